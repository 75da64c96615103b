"""Built-in mappings for well-known exports, one YAML file each, selected by name."""

from __future__ import annotations

import difflib
from pathlib import Path

from custseg.sources.errors import IngestError
from custseg.sources.mapping import Mapping, parse_mapping, parse_yaml

PRESET_DIR = Path(__file__).resolve().parent


def preset_names() -> list[str]:
    """Names of the built-in presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of preset ``name``.

    Raises
    ------
    IngestError
        If there is no such preset (with a did-you-mean suggestion).
    """
    path = PRESET_DIR / f"{name}.yaml"
    if "/" in name or "\\" in name or not path.is_file():
        names = preset_names()
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise IngestError(f"unknown preset {name!r}{hint}; presets: {', '.join(names)}")
    return path


def load_preset_data(name: str) -> dict:
    """The preset as a mapping dict (a copy you may edit and pass as ``mapping=``)."""
    return parse_yaml(preset_path(name).read_text(encoding="utf-8"), f"preset {name}")


def load_preset(name: str) -> Mapping:
    """The checked :class:`~custseg.sources.mapping.Mapping` of preset ``name``."""
    m = parse_mapping(load_preset_data(name), f"preset {name}")
    m.name = name
    return m


def list_presets() -> list[dict]:
    """Every preset: ``name``, ``description``, ``tables`` (target tables) and ``format``."""
    out = []
    for name in preset_names():
        m = load_preset(name)
        out.append({
            "name": name,
            "description": m.description.strip(),
            "tables": [t.name for t in m.tables],
            "format": m.format or "from the extension",
        })
    return out
