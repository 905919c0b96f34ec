"""identity's collections: payers, sms_codes, sms_throttle, sms_daily, sessions. Indexes are declared here only."""
import uuid
from datetime import timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from servicekit.events import Outbox

from identity.domain import SmsPolicy, LockoutPolicy


def ensure_indexes(db):
    db.payers.create_index("id_number", unique=True)
    db.payers.create_index("phone")
    db.sms_codes.create_index([("phone", ASCENDING), ("purpose", ASCENDING), ("created_at", DESCENDING)])
    # Codes are worthless after expiry; let MongoDB purge them a day later (TTL index).
    db.sms_codes.create_index("purge_at", expireAfterSeconds=0)
    db.sms_daily.create_index("purge_at", expireAfterSeconds=0)
    db.sessions.create_index("purge_at", expireAfterSeconds=0)
    Outbox.ensure_indexes(db)


class DuplicatePayer(Exception):
    pass


class PayerRepository:
    def __init__(self, db):
        self.payers = db.payers

    def by_id_number(self, id_number):
        return self.payers.find_one({"id_number": id_number})

    def by_id(self, payer_id):
        return self.payers.find_one({"_id": payer_id})

    def by_phone(self, phone):
        return list(self.payers.find({"phone": phone}).sort("created_at", ASCENDING))

    def insert(self, id_number, name, phone, password_hash, now, session=None):
        doc = {"_id": uuid.uuid4().hex, "id_number": id_number, "name": name, "phone": phone,
               "password_hash": password_hash, "failed_logins": 0, "locked_until": None,
               "created_at": now, "updated_at": now}
        try:
            self.payers.insert_one(doc, session=session)
        except DuplicateKeyError:
            raise DuplicatePayer(id_number) from None
        return doc

    def record_failed_login(self, payer_id, now, policy: LockoutPolicy):
        """Count a wrong password atomically; the failure that reaches the limit locks and resets the count.

        Returns the lock end time when this failure locked the payer, else None.
        """
        self.payers.update_one({"_id": payer_id}, {"$inc": {"failed_logins": 1}})
        locked_until = now + policy.lock_for
        locked = self.payers.update_one(
            {"_id": payer_id, "failed_logins": {"$gte": policy.max_failures}},
            {"$set": {"failed_logins": 0, "locked_until": locked_until, "updated_at": now}},
        )
        return locked_until if locked.modified_count else None

    def reset_failed_logins(self, payer_id):
        self.payers.update_one({"_id": payer_id, "failed_logins": {"$ne": 0}}, {"$set": {"failed_logins": 0}})

    def change_phone(self, payer_id, old_phone, new_phone, now, session=None):
        """Guarded on the old phone, so two concurrent changes cannot both apply."""
        result = self.payers.update_one({"_id": payer_id, "phone": old_phone},
                                        {"$set": {"phone": new_phone, "updated_at": now}}, session=session)
        return result.modified_count == 1


class SmsCodeRepository:
    def __init__(self, db, policy: SmsPolicy):
        self.codes, self.throttle, self.daily = db.sms_codes, db.sms_throttle, db.sms_daily
        self.policy = policy

    def reserve_send(self, phone, purpose, day, now):
        """Take one send slot atomically (60 s per phone and purpose, N per phone per day).

        The filtered upsert either updates a document whose window has passed, or inserts a new one; when the
        document exists inside its window the insert hits the unique _id and the send is refused. Returns a
        token for ``release_send`` or None when rate-limited.
        """
        key = f"{phone}|{purpose}"
        previous = self.throttle.find_one({"_id": key})
        try:
            self.throttle.update_one({"_id": key, "last_sent_at": {"$lte": now - self.policy.resend_interval}},
                                     {"$set": {"last_sent_at": now}}, upsert=True)
        except DuplicateKeyError:
            return None
        day_key = f"{phone}|{day}"
        try:
            self.daily.update_one({"_id": day_key, "count": {"$lt": self.policy.daily_limit}},
                                  {"$inc": {"count": 1}, "$setOnInsert": {"purge_at": now + timedelta(days=2)}},
                                  upsert=True)
        except DuplicateKeyError:
            self._restore_throttle(key, previous, now)
            return None
        return key, day_key, previous

    def release_send(self, reservation, now):
        """Give the slot back when the SMS gateway did not take the message."""
        key, day_key, previous = reservation
        self._restore_throttle(key, previous, now)
        self.daily.update_one({"_id": day_key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    def _restore_throttle(self, key, previous, now):
        if previous is None:
            self.throttle.delete_one({"_id": key, "last_sent_at": now})
        else:
            self.throttle.update_one({"_id": key, "last_sent_at": now},
                                     {"$set": {"last_sent_at": previous["last_sent_at"]}})

    def store(self, phone, purpose, code_hash, now):
        self.codes.insert_one({
            "_id": uuid.uuid4().hex, "phone": phone, "purpose": purpose, "code_hash": code_hash,
            "created_at": now, "expires_at": now + self.policy.ttl, "attempts": 0, "used": False,
            "purge_at": now + self.policy.ttl + timedelta(days=1),
        })

    def latest(self, phone, purpose):
        """Only the newest code for a phone and purpose counts: asking again supersedes the old one."""
        return self.codes.find_one({"phone": phone, "purpose": purpose}, sort=[("created_at", DESCENDING)])

    def count_wrong_attempt(self, code_id):
        self.codes.update_one({"_id": code_id, "attempts": {"$lt": self.policy.max_attempts}},
                              {"$inc": {"attempts": 1}})

    def consume(self, code_id, now):
        """Single use: only one caller can flip ``used``; an expired or exhausted code cannot be consumed."""
        result = self.codes.update_one(
            {"_id": code_id, "used": False, "expires_at": {"$gt": now},
             "attempts": {"$lt": self.policy.max_attempts}},
            {"$set": {"used": True, "used_at": now}})
        return result.modified_count == 1


class SessionRepository:
    def __init__(self, db):
        self.sessions = db.sessions

    def create(self, session_id, payer_id, insurance_type, now, expires_at):
        self.sessions.insert_one({"_id": session_id, "payer_id": payer_id, "insurance_type": insurance_type,
                                  "created_at": now, "expires_at": expires_at, "revoked_at": None,
                                  "purge_at": expires_at + timedelta(days=1)})

    def active(self, session_id, now):
        return self.sessions.find_one({"_id": session_id, "revoked_at": None, "expires_at": {"$gt": now}})

    def revoke(self, session_id, now):
        self.sessions.update_one({"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": now}})
