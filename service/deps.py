"""FastAPI dependencies as Annotated aliases: settings, session, classifier, rules, policy, current user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from classifier.decision import Classifier
from service.auth.models import DISPATCH_ROLES, ROLE_LABELS, Role, User
from service.auth.service import user_for_token
from service.deadlines.service import DeadlinePolicy
from service.rules import ServiceRules
from service.settings import Settings
from service.state import AppState


# Trivial dependencies are async so FastAPI does not hop to the thread pool for each of them on every request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.hotline
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


async def get_classifier(state: StateDep) -> Classifier:
    return state.classifier


async def get_rules(state: StateDep) -> ServiceRules:
    return state.rules


async def get_policy(state: StateDep) -> DeadlinePolicy:
    return state.policy


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
RulesDep = Annotated[ServiceRules, Depends(get_rules)]
PolicyDep = Annotated[DeadlinePolicy, Depends(get_policy)]

_bearer = HTTPBearer(auto_error=False, description="用户令牌（hotline users create 生成）")


def get_current_user(
    session: SessionDep,
    state: StateDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    client = request.client.host if request.client else "?"
    if state.throttle.blocked(client):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "认证失败次数过多，请稍后再试",
            headers={"Retry-After": str(state.throttle.window_seconds)},
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "需要登录：请在 Authorization 头中提供 Bearer 令牌",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = user_for_token(session=session, token=credentials.credentials)
    if user is None:
        state.throttle.fail(client)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "令牌无效或已吊销", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], User]:
    """A dependency that lets only these roles through (403 with the roles named, in Chinese)."""
    names = "、".join(ROLE_LABELS[r] for r in roles)

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"仅{names}可以执行此操作")
        return user

    return check


DispatcherUser = Annotated[User, Depends(require_roles(*DISPATCH_ROLES))]
