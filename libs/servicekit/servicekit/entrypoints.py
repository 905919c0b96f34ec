"""Nameko entrypoints with the house defaults."""
from functools import partial

from nameko.rpc import rpc as nameko_rpc

from servicekit.errors import AppError

# AppError is an answer, not a failure: Nameko logs it without a traceback and the caller gets it typed.
rpc = partial(nameko_rpc, expected_exceptions=(AppError,))
