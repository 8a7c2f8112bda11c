"""The validated name types every settings module shares: names in the file and variable names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _route_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError("a name starts with a letter or digit and has at most 128 letters, digits "
                         "and . _ : / @ - (no spaces)")
    return value


def _env_name(value: str) -> str:
    # NOTE: the message must never contain the value: it is often the secret itself.
    if not ENV_NAME_PATTERN.match(value):
        raise ValueError("looks like a key, not a variable name: put the key in an environment "
                         "variable and name that here (letters, digits and _)")
    return value


Name = Annotated[str, AfterValidator(_route_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]
