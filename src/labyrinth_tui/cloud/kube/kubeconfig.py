"""A kubeconfig read by us (bounded, no aliases) and its shape checked before the client library sees it.

The kubernetes client parses a kubeconfig *file* with plain `yaml.safe_load` (kube_config.py,
`KubeConfigMerger.load_config`), which expands aliases without limit; given a dict
(`load_kube_config_from_dict`) it parses nothing. So we read the file through cloud/safe_yaml.py and hand
the client the dict — after checking that every field it reads has the type it assumes (a list where it
calls `.rstrip()` would be an AttributeError deep inside the library).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from labyrinth_tui.cloud.kube.errors import KubeConfigError
from labyrinth_tui.cloud.safe_yaml import YamlError, read_yaml_file
from labyrinth_tui.model.decode import kind, short

_TEXT: Final = str
_FLAG: Final = bool
_CLUSTER: Final[dict[str, type]] = {
    "server": _TEXT,
    "certificate-authority": _TEXT,
    "certificate-authority-data": _TEXT,
    "tls-server-name": _TEXT,
    "proxy-url": _TEXT,
    "insecure-skip-tls-verify": _FLAG,
}
_USER: Final[dict[str, type]] = {
    "token": _TEXT,
    "tokenFile": _TEXT,
    "username": _TEXT,
    "password": _TEXT,
    "client-certificate": _TEXT,
    "client-certificate-data": _TEXT,
    "client-key": _TEXT,
    "client-key-data": _TEXT,
    "exec": dict,
    "auth-provider": dict,
}
_CONTEXT: Final[dict[str, type]] = {"cluster": _TEXT, "user": _TEXT, "namespace": _TEXT}
_EXEC: Final[dict[str, type]] = {"command": _TEXT, "apiVersion": _TEXT, "args": list, "env": list}


def load_kubeconfig(path: Path) -> dict[str, Any]:
    """The kubeconfig at `path` as a dict; KubeConfigError (one line: file, key, what) if it is not one."""
    try:
        data = read_yaml_file(path, "kubeconfig")
    except FileNotFoundError:
        raise KubeConfigError(f"kubeconfig {path} does not exist") from None
    except OSError as exc:
        raise KubeConfigError(f"kubeconfig {path} is unreadable: {short(exc.strerror or str(exc))}") from None
    except YamlError as exc:
        raise KubeConfigError(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise KubeConfigError(f"kubeconfig {path} has no contexts: is it a kubeconfig?")
    check_kubeconfig(data, f"kubeconfig {path}")
    return data


def check_kubeconfig(data: dict[str, Any], source: str) -> None:
    """Every field the client library reads has the type it assumes; KubeConfigError naming the key."""
    _typed(source, "current-context", data.get("current-context"), str)
    for section, inner, fields in (
        ("contexts", "context", _CONTEXT),
        ("clusters", "cluster", _CLUSTER),
        ("users", "user", _USER),
    ):
        entries = data.get(section)
        if entries is None:
            continue
        _typed(source, section, entries, list)
        for index, entry in enumerate(entries):
            at = f"{section}[{index}]"
            _typed(source, at, entry, dict, required=True)
            _typed(source, f"{at}.name", entry.get("name"), str)
            body = entry.get(inner)
            _typed(source, f"{at}.{inner}", body, dict)
            for key, want in fields.items():
                if isinstance(body, dict):
                    _typed(source, f"{at}.{inner}.{key}", body.get(key), want)
            if inner == "user" and isinstance(body, dict):
                _user_plugins(source, f"{at}.user", body)


def _user_plugins(source: str, at: str, user: dict[str, Any]) -> None:
    exec_ = user.get("exec")
    if isinstance(exec_, dict):
        for key, want in _EXEC.items():
            _typed(source, f"{at}.exec.{key}", exec_.get(key), want)
        for i, arg in enumerate(exec_.get("args") or []):
            _typed(source, f"{at}.exec.args[{i}]", arg, str)
        for i, env in enumerate(exec_.get("env") or []):
            _typed(source, f"{at}.exec.env[{i}]", env, dict, required=True)
            _typed(source, f"{at}.exec.env[{i}].name", env.get("name"), str)
            _typed(source, f"{at}.exec.env[{i}].value", env.get("value"), str)
    provider = user.get("auth-provider")
    if isinstance(provider, dict):
        _typed(source, f"{at}.auth-provider.name", provider.get("name"), str)
        config = provider.get("config")
        _typed(source, f"{at}.auth-provider.config", config, dict)
        for key, value in (config or {}).items():
            _typed(source, f"{at}.auth-provider.config.{short(str(key), 30)}", value, str)


def _typed(source: str, key: str, value: object, want: type, *, required: bool = False) -> None:
    if (value is None and not required) or (
        isinstance(value, want) and not (want is not bool and isinstance(value, bool))
    ):
        return
    expected = {str: "text", bool: "true or false", list: "a list", dict: "a mapping"}[want]
    got = kind(value) if isinstance(value, list | dict) else f"{kind(value)} {short(repr(value), 40)}"
    raise KubeConfigError(f"{source}: {key} must be {expected}, not {got}")
