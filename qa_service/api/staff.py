"""Staff management over REST, for admins only (the /staff page): accounts and
host display links. Moderators and hosts get 403; writes need the CSRF header.
A password is in a response only when the server generated it, once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..db.models import User
from ..hub.hub import Hub
from ..services import staff as service
from .common import bool_field, hub_of, int_field, json_body, path_int, staff

ADMINS = ("admin",)


async def _admin(request: Request) -> tuple[Hub, User, int]:
    """The hub, the admin, and the event whose audit log records the change."""
    user = await staff(request, *ADMINS)
    hub = hub_of(request)
    return hub, user, await hub.event_id()


async def accounts(request: Request) -> JSONResponse:
    """GET lists the accounts, POST adds one (one route: its 405 names both methods)."""
    return await (list_accounts if request.method in ("GET", "HEAD") else add_account)(request)


async def host_links(request: Request) -> JSONResponse:
    """GET lists the studios' links, POST issues one."""
    return await (list_host_links if request.method in ("GET", "HEAD") else issue_host_link)(request)


async def list_accounts(request: Request) -> JSONResponse:
    """
    summary: Every staff account (never a password hash)
    responses:
      200: {accounts}
    """
    await staff(request, *ADMINS)
    hub = hub_of(request)
    return JSONResponse({"accounts": await hub.run(service.list_accounts, hub.ctx)})


async def add_account(request: Request) -> JSONResponse:
    """
    summary: Add a moderator, host or admin
    requestBody: {username, role, password?}
    responses:
      200: {account, password}  (password: the generated one, shown once; null if given)
      400: user.name_invalid, user.role_invalid, password.too_short
      409: user.exists
    """
    hub, user, event_id = await _admin(request)
    data = await json_body(request)
    account, password = await hub.run(
        service.add_account,
        hub.ctx,
        event_id,
        user.username,
        data.get("username"),
        data.get("role"),
        data.get("password"),
    )
    return JSONResponse({"account": account, "password": password})


async def reset_password(request: Request) -> JSONResponse:
    """
    summary: Reset an account's password (its sessions end)
    requestBody: {password?}
    responses:
      200: {account, password}
      404: user.unknown
    """
    hub, user, event_id = await _admin(request)
    data = await json_body(request)
    uid = path_int(request, "user_id")
    account, password = await hub.run(
        service.reset_password, hub.ctx, event_id, user.username, uid, data.get("password")
    )
    return JSONResponse({"account": account, "password": password})


async def set_disabled(request: Request) -> JSONResponse:
    """
    summary: Disable (its sessions end) or enable an account
    requestBody: {disabled}
    responses:
      200: the account
      400: staff.self
      404: user.unknown
      409: staff.last_admin
    """
    hub, user, event_id = await _admin(request)
    data = await json_body(request)
    uid = path_int(request, "user_id")
    assert user.id is not None
    disabled = bool_field(data, "disabled")
    return JSONResponse(await hub.run(service.set_disabled, hub.ctx, event_id, user.id, user.username, uid, disabled))


async def list_host_links(request: Request) -> JSONResponse:
    """
    summary: The event's studios and their host links, newest first
    responses:
      200: {studios, links}
    """
    hub, _, event_id = await _admin(request)
    return JSONResponse(await hub.run(service.list_host_links, hub.ctx, event_id, hub.signer, hub.settings.base_url))


async def issue_host_link(request: Request) -> JSONResponse:
    """
    summary: Issue a host display link for a studio
    requestBody: {studio_id, label?, hours | until}
    responses:
      200: the link, with its url
      400: host_link.expiry_required, host_link.hours_invalid, host_link.until_invalid
      404: studio.unknown
    """
    hub, user, event_id = await _admin(request)
    data = await json_body(request)
    studio_id = int_field(data, "studio_id")
    assert studio_id is not None
    expires_at = service.expiry(data.get("hours"), data.get("until"))
    return JSONResponse(
        await hub.run(
            service.issue_host_link,
            hub.ctx,
            event_id,
            user.username,
            hub.signer,
            hub.settings.base_url,
            studio_id,
            expires_at,
            data.get("label"),
        )
    )


async def revoke_host_link(request: Request) -> JSONResponse:
    """
    summary: Revoke one host link (a display open with it closes; the studio's other links keep working)
    responses:
      200: the link
      404: host_link.unknown
    """
    hub, user, event_id = await _admin(request)
    link_id = path_int(request, "link_id")
    return JSONResponse(
        await hub.run(
            service.revoke_host_link, hub.ctx, event_id, user.username, hub.signer, hub.settings.base_url, link_id
        )
    )
