"""Ops command for the dead-letter queues ``dlq.<service>`` (see servicekit.reliable).

    python -m servicekit.dlq list <service>               # what is waiting, numbered
    python -m servicekit.dlq inspect <service> <n|id>     # one letter in full (ID numbers masked)
    python -m servicekit.dlq replay <service> <n|id>...   # after the cause is fixed; or --all
    python -m servicekit.dlq discard <service> <n|id>...  # remove for good (an event that must not apply)

``make dlq ARGS="list orders"``. The broker is ``AMQP_URI`` (or ``--amqp-uri``). Numbers are positions in the
current ``list``; a replay prints the letter ids it replayed, and ids are what to use when others may be
replaying too. A replayed letter leaves the queue only once the broker confirmed the re-published event.
"""
import argparse
import json
import os
import sys

from servicekit.pii import redact_id_numbers
from servicekit.reliable import QueueMismatch, discard_dead_letters, read_dead_letters, replay_dead_letters

DEFAULT_AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"


def _masked(value):
    return json.loads(redact_id_numbers(json.dumps(value, ensure_ascii=False)))


def _pick(letters, ref):
    """A letter by its 1-based position in ``list`` or by (a prefix of) its id."""
    if ref.isdigit() and 1 <= int(ref) <= len(letters):
        return letters[int(ref) - 1]
    matches = [letter for letter in letters if str(letter.get("letter_id", "")).startswith(ref)]
    if len(matches) != 1:
        raise LookupError(f"no single dead letter matches {ref!r} ({len(matches)} found); see `list`")
    return matches[0]


def _summary(index, letter):
    first_line = (letter.get("error") or "").splitlines()[:1]
    return (f"{index:>3}  {letter.get('letter_id')}  {letter.get('dead_lettered_at')}  "
            f"{letter.get('source_service')}/{letter.get('event_type')} -> {letter.get('handler')}  "
            f"{letter.get('reason')} x{letter.get('attempts')}  event_id={(letter.get('payload') or {}).get('event_id')}"
            f"  {redact_id_numbers(first_line[0] if first_line else '')}")


def main(argv=None, out=sys.stdout):
    parser = argparse.ArgumentParser(prog="python -m servicekit.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI") or DEFAULT_AMQP_URI)
    parser.add_argument("--limit", type=int, default=1000, help="letters to look at (default 1000)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the letters waiting").add_argument("service")
    inspect = commands.add_parser("inspect", help="one letter in full")
    inspect.add_argument("service")
    inspect.add_argument("letter", help="number from `list` or letter id")
    replay = commands.add_parser("replay", help="publish again to the handler's queue, then remove")
    replay.add_argument("service")
    replay.add_argument("letters", nargs="*", help="numbers from `list` or letter ids")
    replay.add_argument("--all", action="store_true", help="every letter waiting")
    discard = commands.add_parser("discard", help="remove letters for good (prints what it removed)")
    discard.add_argument("service")
    discard.add_argument("letters", nargs="+", help="numbers from `list` or letter ids")
    args = parser.parse_args(argv)

    try:
        letters = read_dead_letters(args.amqp_uri, args.service, limit=args.limit)
        if args.command == "list":
            print(f"dlq.{args.service}: {len(letters)} dead letter(s)", file=out)
            for index, letter in enumerate(letters, 1):
                print(_summary(index, letter), file=out)
        elif args.command == "inspect":
            print(json.dumps(_masked(_pick(letters, args.letter)), ensure_ascii=False, indent=2), file=out)
        elif args.command == "discard":
            chosen = [_pick(letters, ref) for ref in args.letters]
            for letter in discard_dead_letters(args.amqp_uri, args.service, [l["letter_id"] for l in chosen],
                                               limit=args.limit):
                print("discarded " + json.dumps(_masked(letter), ensure_ascii=False), file=out)
        else:
            if args.all == bool(args.letters):
                parser.error("replay takes letter numbers/ids or --all")
            ids = None if args.all else [_pick(letters, ref)["letter_id"] for ref in args.letters]
            replayed = replay_dead_letters(args.amqp_uri, args.service, ids, limit=args.limit)
            for letter in replayed:
                print(f"replayed {letter['letter_id']} ({letter['event_type']} -> {letter.get('queue')})", file=out)
            missing = set(ids or ()) - {letter["letter_id"] for letter in replayed}
            if missing:
                print(f"not found any more (replayed by someone else?): {sorted(missing)}", file=out)
                return 1
    except (LookupError, QueueMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
