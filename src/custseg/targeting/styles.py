"""Column names of an audience file, per email tool.

* ``generic``: snake_case names for your own tools.
* ``mailchimp``: Mailchimp's import names (``Email Address``, ``First Name``,
  ``Last Name``) and ``TAGS`` (Mailchimp's own export name of the tags column;
  several tags in one cell are separated by commas, a tag holding a comma is
  quoted). Mailchimp clips text fields at 255 bytes, so longer values are clipped
  here, at a character boundary, with a note. Other columns become merge fields
  when you map them on import.
* ``klaviyo``: Klaviyo's property names (``Email`` first, as Klaviyo wants the
  identifier in the first column, then ``First Name`` and ``Last Name``); the
  other columns import as custom properties under their header.
"""

from __future__ import annotations

import pandas as pd

#: The audience's fields in file order, and each style's header for them (None: not in that style).
FIELDS = ("email", "first_name", "last_name", "tags", "segment", "play", "offer", "recommended_products",
          "recommended_product_ids", "customer_id", "campaign_id")
STYLES: dict[str, dict[str, str | None]] = {
    "generic": {f: (None if f == "tags" else f) for f in FIELDS},
    "mailchimp": {"email": "Email Address", "first_name": "First Name", "last_name": "Last Name", "tags": "TAGS",
                  "segment": "Segment", "play": "Play", "offer": "Offer",
                  "recommended_products": "Recommended Products",
                  "recommended_product_ids": "Recommended Product IDs", "customer_id": "Customer ID",
                  "campaign_id": "Campaign ID"},
    "klaviyo": {"email": "Email", "first_name": "First Name", "last_name": "Last Name", "tags": None,
                "segment": "Segment", "play": "Play", "offer": "Offer",
                "recommended_products": "Recommended Products",
                "recommended_product_ids": "Recommended Product IDs", "customer_id": "Customer ID",
                "campaign_id": "Campaign ID"},
}
MAILCHIMP_TEXT_BYTES = 255


def check_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"style {style!r} must be one of {', '.join(STYLES)}")
    return style


def mailchimp_tags(*tags: str) -> str:
    """One TAGS cell: tags joined by commas, a tag holding a comma in double quotes."""
    return ",".join(f'"{t}"' if "," in t else t for t in tags if t)


def _clip(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", errors="ignore")


def styled(frame: pd.DataFrame, style: str) -> tuple[pd.DataFrame, list[str]]:
    """The audience ``frame`` (columns named as :data:`FIELDS`) with ``style``'s columns; and notes."""
    names = STYLES[check_style(style)]
    notes: list[str] = []
    frame = frame.copy()
    if names.get("tags") and "tags" not in frame:
        frame["tags"] = [mailchimp_tags(s, c) for s, c in zip(frame["segment"], frame["campaign_id"])]
    keep = [f for f in FIELDS if f in frame.columns and names.get(f)]
    out = frame[keep].rename(columns={f: names[f] for f in keep})
    if style == "mailchimp":
        for col in out.columns:
            if out[col].dtype == object:
                clipped = out[col].map(lambda v: _clip(v, MAILCHIMP_TEXT_BYTES) if isinstance(v, str) else v)
                n = int((clipped != out[col]).sum())
                if n:
                    notes.append(f"{n:,} values of {col!r} clipped to Mailchimp's {MAILCHIMP_TEXT_BYTES} bytes")
                out[col] = clipped
    return out, notes
