"""注册, 登录, 退出, 修改手机号, and the payers who share a phone."""
from gateway import schemas as s
from gateway.http import call, endpoint


class IdentityRoutes:
    @endpoint("POST", "/api/v1/sms-codes", summary="Send a 6-digit SMS code (获取验证码)", tag="identity",
              auth=None, body=s.SmsCodeRequest(), response=s.SmsCodeResponse(), status=202,
              errors=("SMS_RATE_LIMITED", "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
              description="One send per phone and purpose per 60 s, 10 per phone per day; a code lives 5 minutes.")
    def send_sms_code(self, request, body):
        self.throttle_client(request, "sms-codes")
        return call(self.identity_rpc.send_sms_code, body["phone"], body["purpose"])

    @endpoint("POST", "/api/v1/payers", summary="Register a payer (注册)", tag="identity", auth=None,
              body=s.RegisterRequest(), response=s.RegisterResponse(), status=201,
              errors=("INVALID_ID_NUMBER", "SMS_CODE_INVALID", "NOT_ENROLLED", "ALREADY_REGISTERED",
                      "RATE_LIMITED", "SERVICE_UNAVAILABLE"))
    def register(self, request, body):
        self.throttle_client(request, "payers")
        return call(self.identity_rpc.register, **body)

    @endpoint("POST", "/api/v1/sessions", summary="Log in for one insurance type (登录)", tag="identity", auth=None,
              body=s.LoginRequest(), response=s.SessionResponse(), status=201,
              errors=("INVALID_ID_NUMBER", "UNAUTHENTICATED", "ACCOUNT_LOCKED", "NOT_ENROLLED", "SMS_CODE_INVALID",
                      "RATE_LIMITED", "SERVICE_UNAVAILABLE"),
              description="The token is valid 30 minutes and bound to the payer and the chosen insurance type.")
    def login(self, request, body):
        self.throttle_client(request, "sessions")
        return call(self.identity_rpc.login, **body)

    @endpoint("DELETE", "/api/v1/sessions/current", summary="Log out (revoke this token)", tag="identity",
              status=204)
    def logout(self, request, principal):
        call(self.identity_rpc.logout, principal["session_id"])

    @endpoint("PUT", "/api/v1/me/phone", summary="Change the registered phone (修改手机号)", tag="identity",
              body=s.PhoneChangeRequest(), response=s.PhoneChangeResponse(),
              errors=("SMS_CODE_INVALID", "CONFLICT"),
              description="Needs a `change_phone` code sent to the old phone and one sent to the new phone.")
    def change_phone(self, request, principal, body):
        return call(self.identity_rpc.change_phone, principal["payer_id"], **body)

    @endpoint("GET", "/api/v1/me/related-payers", summary="Payers registered under the same phone (代缴)",
              tag="identity", response=s.RelatedPayersResponse(),
              description="For paying on behalf of relatives: each registered payer sharing the session payer's "
                          "phone, with a masked ID. Acting for one of them means logging in as that payer.")
    def related_payers(self, request, principal):
        return {"payers": call(self.identity_rpc.payers_on_phone, principal["payer_id"])}
