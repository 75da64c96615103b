"""Playbooks: what to do with each segment.

A playbook maps segments to **plays**: an objective, recommended actions, the
channel, the offer (``"none"``, ``"10% voucher"``, ``"free shipping"``, or
null when not set), the cadence, the service level and the KPI to watch.
custseg ships a play for every segment name it gives itself
(:mod:`custseg.targeting.defaults`); a YAML file overrides or extends them::

    plays:
      - segment: Champions          # an exact segment name ...
        offer: early access         # ... overriding one field of the built-in play
      - segment: "High value · *"   # a glob over segment names
        method: value               # only in runs of this method (a glob: "template:*")
        play: VIP
        objective: Keep them
        actions: [Personal call]
    default:                        # for segments nothing else matches
        offer: none

How a segment finds its play (:meth:`Playbook.for_segment`), first match wins:

1. the file's entries, then the built-in ones;
2. within each, an exact name with a matching method, an exact name, a glob
   with a matching method, a glob; equal ones in the order written;
3. the ``default`` play.

Names and globs ignore case. An entry with a ``method`` only matches when the
run's method is known and matches it. An entry of the file with the same
segment and method as a built-in entry changes only the fields it gives; a new
entry takes the fields it leaves out from the default play.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from custseg.targeting.defaults import BUILTIN_PLAYS, DEFAULT_PLAY

TEXT_FIELDS = ("play", "objective", "channel", "cadence", "service_level", "kpi")
PLAY_FIELDS = ("play", "objective", "actions", "channel", "offer", "cadence", "service_level", "kpi")
ENTRY_KEYS = ("segment", "method") + PLAY_FIELDS
TOP_KEYS = ("version", "plays", "default")
BUILTIN = "built-in"
_GLOB = set("*?[")


class PlaybookError(ValueError):
    """A playbook file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Play:
    """What to do with one segment.

    Attributes
    ----------
    segment : str
        The segment name or glob the play is written for (``"default"`` for the default play).
    play : str
        A short name of the play (``"Win back"``).
    objective : str
        What the play is for.
    actions : tuple of str
        Recommended actions.
    channel, offer, cadence, service_level, kpi : str or None
        Channel, offer (``"none"`` for no offer, None when not set), how often to contact, the
        service level and the KPI to watch.
    method : str or None
        The run methods the play is restricted to (a glob), or None for any.
    source : str
        ``"built-in"`` or the playbook file the play (or a change to it) comes from.
    """

    segment: str
    play: str
    objective: str
    actions: tuple[str, ...]
    channel: str | None = None
    offer: str | None = None
    cadence: str | None = None
    service_level: str | None = None
    kpi: str | None = None
    method: str | None = None
    source: str = BUILTIN

    def to_dict(self) -> dict:
        """The play as YAML-ready data (``actions`` a list; no ``source``)."""
        out = {"segment": self.segment}
        if self.method is not None:
            out["method"] = self.method
        out.update({k: (list(v) if k == "actions" else v) for k, v in asdict(self).items() if k in PLAY_FIELDS})
        return out

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB & set(self.segment))

    def matches(self, name: str, method: str | None) -> int | None:
        """How specifically this play matches segment ``name`` of a ``method`` run (3 best), or None."""
        if self.method is not None and (
                method is None or not fnmatch.fnmatchcase(method.casefold(), self.method.casefold())):
            return None
        if self.is_glob:
            hit = fnmatch.fnmatchcase(name.casefold(), self.segment.casefold())
        else:
            hit = name.casefold() == self.segment.casefold()
        if not hit:
            return None
        return (0 if self.is_glob else 2) + (self.method is not None)


@dataclass(frozen=True)
class Playbook:
    """Plays for segments: a file's plays, the built-in ones and a default.

    Use :func:`load_playbook` to make one.

    Attributes
    ----------
    plays : tuple of Play
        The file's plays (first) and the built-in ones they do not replace.
    default : Play
        For segments no play matches.
    path : str or None
        The file, or None for the built-in playbook.
    """

    plays: tuple[Play, ...]
    default: Play
    path: str | None = None
    _user: int = field(default=0, repr=False)  # how many of ``plays`` come from the file

    def for_segment(self, name: str, method: str | None = None) -> Play:
        """The play for segment ``name`` of a run of ``method`` (``"rfm"``, ``"value"``, ``"template:lapsed"``).

        Examples
        --------
        >>> load_playbook().for_segment("Champions").offer
        'none'
        >>> load_playbook().for_segment("High value · at risk", "value").play
        'Personal win-back'
        """
        for tier in (self.plays[:self._user], self.plays[self._user:]):
            best, best_score = None, -1
            for play in tier:
                score = play.matches(str(name), method)
                if score is not None and score > best_score:
                    best, best_score = play, score
            if best is not None:
                return best
        return self.default

    def to_dict(self) -> dict:
        """Every play and the default, as a playbook file holds them."""
        default = self.default.to_dict()
        default.pop("segment")
        return {"version": 1, "plays": [p.to_dict() for p in self.plays], "default": default}


def load_playbook(path: str | Path | None = None) -> Playbook:
    """The built-in playbook, changed and extended by the YAML file at ``path`` (if given).

    Raises
    ------
    PlaybookError
        When the file is missing or not valid, naming the file and the key:
        ``playbook pb.yaml: plays[2] (segment 'Champions'): unknown key 'ofer' (did you mean 'offer'?)``.
    """
    builtin_default = _play(dict(DEFAULT_PLAY, segment="default"), BUILTIN)
    builtin = [_play(e, BUILTIN) for e in BUILTIN_PLAYS]
    if path is None:
        return Playbook(tuple(builtin), builtin_default)
    path = Path(path)
    where = f"playbook {path}"
    if not path.is_file():
        raise PlaybookError(f"{where} does not exist (write an editable one with `custseg playbook init -o {path}`)")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    spec = {} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise PlaybookError(f"{where}: the file must be a mapping with keys {', '.join(TOP_KEYS)}, "
                            f"not a {type(spec).__name__}")
    for key in spec:
        if key not in TOP_KEYS:
            raise PlaybookError(f"{where}: unknown key {key!r}{_hint(key, TOP_KEYS)}; keys are {', '.join(TOP_KEYS)}")
    if spec.get("version", 1) != 1:
        raise PlaybookError(f"{where}: version {spec['version']!r} is not supported (version: 1)")

    default_spec = spec.get("default") or {}
    if not isinstance(default_spec, Mapping):
        raise PlaybookError(f"{where}: default must be a mapping of play fields ({', '.join(PLAY_FIELDS)})")
    _check_entry(default_spec, f"{where}: default", allowed=PLAY_FIELDS)
    default = _play({**builtin_default.to_dict(), **default_spec}, str(path)) if default_spec else builtin_default

    entries = spec.get("plays") or []
    if not isinstance(entries, list):
        raise PlaybookError(f"{where}: plays must be a list of entries, each with a segment (name or glob)")
    by_key = {_key(p.segment, p.method): p for p in builtin}
    seen: dict[tuple, int] = {}
    user: list[Play] = []
    for i, entry in enumerate(entries):
        label = f"{where}: plays[{i}]"
        if not isinstance(entry, Mapping):
            raise PlaybookError(f"{label} must be a mapping with a segment and play fields, not {entry!r}")
        if "segment" not in entry:
            raise PlaybookError(f"{label} has no segment (a segment name or a glob such as 'High value · *')")
        label = f"{label} (segment {entry['segment']!r})"
        _check_entry(entry, label, allowed=ENTRY_KEYS)
        if not set(entry) & set(PLAY_FIELDS):
            raise PlaybookError(f"{label} sets none of the play fields ({', '.join(PLAY_FIELDS)})")
        key = _key(entry["segment"], entry.get("method"))
        if key in seen:
            raise PlaybookError(f"{label} repeats plays[{seen[key]}] (same segment and method)")
        seen[key] = i
        base = by_key.pop(key, None)
        base_fields = base.to_dict() if base is not None else {**default.to_dict(), "segment": entry["segment"]}
        user.append(_play({**base_fields, **entry}, str(path)))
    rest = [p for p in builtin if _key(p.segment, p.method) in by_key]
    return Playbook(tuple(user + rest), default, str(path), len(user))


def write_default_playbook(path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the built-in playbook to ``path`` as an editable YAML file; return the path.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another file or overwrite it")
    if not path.parent.exists():
        raise ValueError(f"folder {path.parent} does not exist")
    header = (
        "# custseg playbook: what to do with each segment (see docs/targeting.md).\n"
        "# Edit the plays, delete the ones you do not change, add your own:\n"
        "#   segment: an exact segment name or a glob ('High value · *'); names ignore case\n"
        "#   method:  optional, the run methods the play is for (rfm, value, template:*, cluster:*, rules)\n"
        "#   play, objective, actions (a list), channel, offer (none, a voucher, ...; null = not set),\n"
        "#   cadence, service_level, kpi\n"
        "# Your entries come before the built-in ones; an entry with the segment and method of a\n"
        "# built-in play changes only the fields it gives. `default` is for everything else.\n"
    )
    body = yaml.safe_dump(load_playbook().to_dict(), sort_keys=False, allow_unicode=True, width=110)
    path.write_text(header + body, encoding="utf-8")
    return path


def plays_frame(playbook: Playbook, segments, method: str | None = None) -> pd.DataFrame:
    """One row per segment name: ``segment``, the play's fields (``actions`` a list), ``matched``
    (the name or glob of the play, ``default`` for the default play), ``matched_method`` and ``source``."""
    rows = []
    for name in segments:
        play = playbook.for_segment(str(name), method)
        row = {"segment": name, **{k: getattr(play, k) for k in PLAY_FIELDS}}
        row["actions"] = list(play.actions)
        row.update(matched=play.segment, matched_method=play.method, source=play.source)
        rows.append(row)
    return pd.DataFrame(rows, columns=["segment", *PLAY_FIELDS, "matched", "matched_method", "source"])


def playbook_for_run(store, run_id: str | None = None, path: str | Path | None = None, *,
                     playbook: Playbook | None = None) -> pd.DataFrame:
    """The play of every segment of a run (default: the newest run).

    Parameters
    ----------
    store : Store
        The store holding the run (may be opened read-only).
    run_id : str, default=None
        The run; None for the newest.
    path : str or Path, default=None
        A playbook file changing the built-in plays (ignored when ``playbook`` is given).
    playbook : Playbook, default=None
        An already loaded playbook.

    Returns
    -------
    DataFrame
        One row per segment: ``run_id``, ``method``, ``segment``, ``customers``, ``share``, ``play``,
        ``objective``, ``actions`` (list of str), ``channel``, ``offer``, ``cadence``,
        ``service_level``, ``kpi``, ``matched``, ``matched_method``, ``source``; in the run's
        priority order when it records one (value runs), else by size, largest first.
    """
    from custseg.pipeline import latest_run
    from custseg.segmenters.runs import run_parameters

    playbook = playbook or load_playbook(path)
    run_id = run_id or latest_run(store)
    params = run_parameters(store, run_id)
    method = store.con.execute("SELECT method FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    sizes = store.con.execute(
        "SELECT segment, count(DISTINCT customer_id) AS customers FROM segment_memberships WHERE run_id = ? "
        "GROUP BY segment", [run_id]).df()
    n = store.con.execute("SELECT count(DISTINCT customer_id) FROM segment_memberships WHERE run_id = ?",
                          [run_id]).fetchall()[0][0]
    order = params.get("priority") if isinstance(params, dict) else None
    priority = {s: i for i, s in enumerate(order or [])}
    sizes["_order"] = sizes["segment"].map(lambda s: priority.get(s, len(priority)))
    sizes = sizes.sort_values(["_order", "customers", "segment"], ascending=[True, False, True])
    plays = plays_frame(playbook, sizes["segment"].tolist(), method)
    plays.insert(1, "customers", sizes["customers"].astype(int).to_numpy())
    plays.insert(2, "share", sizes["customers"].to_numpy() / n if n else 0.0)
    plays.insert(0, "method", method)
    plays.insert(0, "run_id", run_id)
    return plays.reset_index(drop=True)


# -- validation ----------------------------------------------------------------------

def _key(segment, method) -> tuple[str, str | None]:
    return str(segment).casefold(), None if method is None else str(method).casefold()


def _hint(key, choices) -> str:
    close = difflib.get_close_matches(str(key), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_entry(entry: Mapping, label: str, allowed: tuple[str, ...]) -> None:
    for key, value in entry.items():
        if key not in allowed:
            raise PlaybookError(f"{label}: unknown key {key!r}{_hint(key, allowed)}; keys are {', '.join(allowed)}")
        if key in ("segment", "play", "objective"):
            if not isinstance(value, str) or not value.strip():
                raise PlaybookError(f"{label}: {key} must be non-empty text, not {value!r}")
        elif key in ("method", "offer") + TEXT_FIELDS:
            if value is not None and not isinstance(value, str):
                raise PlaybookError(f"{label}: {key} must be text or null, not {value!r}")
        elif key == "actions":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(a, str) and a.strip() for a in items):
                raise PlaybookError(f"{label}: actions must be a list of texts (or one text), not {value!r}")


def _play(entry: Mapping, source: str) -> Play:
    actions = entry.get("actions") or []
    actions = [actions] if isinstance(actions, str) else actions
    return Play(segment=str(entry["segment"]), play=entry["play"], objective=entry["objective"],
                actions=tuple(str(a) for a in actions), channel=entry.get("channel"), offer=entry.get("offer"),
                cadence=entry.get("cadence"), service_level=entry.get("service_level"), kpi=entry.get("kpi"),
                method=entry.get("method"), source=source)
