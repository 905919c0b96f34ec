"""What orders asks other services: the payer's enrolment region (plans.enrollment, when plans offers it)."""
import logging

from nameko.exceptions import RemoteError

from servicekit.errors import AppError

log = logging.getLogger(__name__)


def enrollment_region(plans_rpc, id_number, insurance_type, default_region):
    """The region of the payer's 参保登记 for this type; the configured default when plans cannot say."""
    try:
        enrollment = plans_rpc.enrollment(id_number, insurance_type)
    except AppError:
        return default_region
    except RemoteError as exc:
        if exc.exc_type == "MethodNotFound":
            return default_region
        raise
    region = (enrollment or {}).get("region_code") if isinstance(enrollment, dict) else None
    return region or default_region
