"""Who may use the edge node: users with argon2 password hashes, sessions, roles, login throttle."""

from edge_node.auth.service import (
    COOKIE,
    OPEN_PATHS,
    AuthService,
    CurrentUser,
    api_guard,
    auth_service,
    authenticate,
    open_auth,
    require_role,
)
from edge_node.auth.users import Role, User, UserError, UserStore

__all__ = [
    "COOKIE",
    "OPEN_PATHS",
    "AuthService",
    "CurrentUser",
    "Role",
    "User",
    "UserError",
    "UserStore",
    "api_guard",
    "auth_service",
    "authenticate",
    "open_auth",
    "require_role",
]
