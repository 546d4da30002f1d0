"""Ray's token authentication: the token found where Ray itself looks, and a refusal said plainly.

Ray 2.60 clusters require a token by default (`ray start` turns it on when
`~/.ray/auth_token` exists, `ray.init()` always). Ray looks for it in
$RAY_AUTH_TOKEN, then the file $RAY_AUTH_TOKEN_PATH names, then
~/.ray/auth_token, but sends it only in token mode, which it switches on by
itself only for a cluster it finds (`auto`), never for an address. So a token
found in one of those places switches token mode on here ($RAY_AUTH_MODE, unless
set); a cluster that has no authentication ignores it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from higgs_cli.errors import UsageError

MODE, TOKEN, TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
TOKEN_HINT = (f"give this machine the cluster's token (`ray get-auth-token` on its head prints it): ${TOKEN}, "
              f"a file named by ${TOKEN_PATH}, or ~/.ray/auth_token")
# Ray's words for a refused or missing token (its exception and its C++ log lines)
AUTH_MARKERS = ("AuthenticationError", "InvalidAuthToken", "Unauthenticated", "authentication token")


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where Ray will read this machine's token from (as Ray looks), or None when there is none.

    A $RAY_AUTH_TOKEN_PATH naming a file that cannot be read is an error here, not a silent fall back."""
    if os.environ.get(TOKEN, "").strip():
        return f"${TOKEN}"
    named = os.environ.get(TOKEN_PATH)
    if named:
        try:
            if Path(named).expanduser().read_text(encoding="utf-8").strip():
                return f"${TOKEN_PATH} ({named})"
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"${TOKEN_PATH} names {named}, which cannot be read: "
                             f"{getattr(error, 'strerror', None) or error}", hint=TOKEN_HINT) from None
        raise UsageError(f"${TOKEN_PATH} names {named}, which is empty", hint=TOKEN_HINT)
    path = default_token_path()
    try:
        return str(path) if path.read_text(encoding="utf-8").strip() else None
    except (OSError, UnicodeDecodeError):
        return None


def use_token(address: str) -> str | None:
    """Switch Ray's token mode on for this process when a token is there and $RAY_AUTH_MODE is unset.

    `local` (a private cluster started here) with no token gets one in $RAY_AUTH_TOKEN, for this
    process and the cluster it starts: Ray would otherwise write a new ~/.ray/auth_token.
    Returns where the token comes from (None: Ray runs without one)."""
    mode = os.environ.get(MODE)
    if mode is not None and mode.strip().lower() != "token":
        return None  # the user's choice (disabled): respected
    source = token_source()
    if source is None and address == "local":
        os.environ[TOKEN] = secrets.token_hex(32)
        source = "a token made for this run"
    if source is not None and mode is None:
        os.environ[MODE] = "token"
    refresh_ray_config()
    return source


def refresh_ray_config() -> None:
    """Ray caches its configuration (the auth mode) and the token it loaded once imported: read the
    environment again."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    try:
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception:  # a Ray without them reads the environment when it connects
        pass


def is_auth_failure(error: BaseException | None, output: str = "") -> bool:
    """Whether Ray refused this machine's token (or wanted one): in the exception's chain or its log lines."""
    seen = 0
    while error is not None and seen < 10:
        if any(marker in f"{type(error).__name__}: {error}" for marker in AUTH_MARKERS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return any(marker in output for marker in AUTH_MARKERS)


def auth_error(address: str, source: str | None) -> UsageError:
    """What failed and how to fix it, for a cluster that refused (or wanted) a token."""
    if os.environ.get(MODE, "").strip().lower() not in ("", "token"):
        return UsageError(f"the Ray cluster at {address} requires an authentication token, and "
                          f"${MODE}={os.environ[MODE]} here sends none",
                          hint=f"unset {MODE} (or set it to token) and {TOKEN_HINT[0].lower()}{TOKEN_HINT[1:]}")
    if source is None:
        return UsageError(f"Ray needs an authentication token for the cluster at {address}, and this machine "
                          "has none", hint=TOKEN_HINT)
    return UsageError(f"the Ray cluster at {address} refused the authentication token from {source}",
                      hint="use the cluster's own token (`ray get-auth-token` on its head prints it)")


def check_token(address: str, source: str | None) -> None:
    """Ask a HOST:PORT cluster's head (its GCS) once whether it accepts this machine's token: a refusal is
    known in about a second, where `ray.init` retries for 20. Anything else is left to `ray.init`."""
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:  # a Ray without token authentication
        return
    try:
        GcsClient(address=address)
    except AuthenticationError:
        raise auth_error(address, source) from None
    except Exception:
        return
