"""Request payloads of the model server: JSON decoding and validation into a feature matrix.

Two families of payloads are understood:

* ``/predict``: ``{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}`` or
  ``{"records": [{"sepal_length": 5.1, ...}, ...]}``;
* ``/invocations``: MLflow's scoring protocol, exactly one of ``dataframe_split``
  (``{"columns": [...], "data": [[...]]}``), ``dataframe_records`` (list of
  objects), ``instances`` or ``inputs`` (list of rows, list of objects, or for
  ``inputs`` an object of columns).

Every problem raises :class:`PayloadError` with an HTTP status (4xx) and a
message naming what is wrong and what a correct request looks like.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from mlops_workbench.errors import InputError
from mlops_workbench.fielderrors import shown

MAX_BODY_BYTES = 1_000_000
MAX_ABS_VALUE = 1e12
"""The largest magnitude a feature value may have: anything larger is a unit or encoding mistake, refused
before the model sees it (a float overflow inside the model would otherwise answer nonsense or fail)."""
INVOCATION_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
"""What a client-chosen request id (``x-request-id``) may look like; anything else is replaced by a new one."""
_NUMBER_TYPES = (int, float)


class PayloadError(InputError):
    """A request the server cannot score; ``status`` is the HTTP code to answer (4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def request_id(supplied: bytes | str | None) -> str:
    """The client's own request id when it fits :data:`REQUEST_ID`, else a new one (never an error)."""
    if isinstance(supplied, bytes):
        supplied = supplied.decode("latin-1")
    return supplied if supplied and REQUEST_ID.match(supplied) else uuid.uuid4().hex


def decode_json(body: bytes) -> dict[str, Any]:
    """Parse a JSON object from the request body (``NaN`` is parsed so it can be rejected by name)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(too_large_message(len(body)), status=413)
    if not body.strip():
        raise PayloadError(
            'The request body is empty: send a JSON object such as {"instances": [[5.1, 3.5, 1.4, 0.2]]}.'
        )
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise PayloadError(
            f"The request body is a JSON {type(payload).__name__}, not an object: wrap the rows, "
            'e.g. {"instances": [[5.1, 3.5, 1.4, 0.2]]}.'
        )
    return payload


def parse_json(body: bytes) -> Any:
    """Any JSON value, with a clear error for bodies nested too deeply or not JSON at all."""
    try:
        return orjson.loads(body)  # refuses nesting deeper than 1024 levels
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise PayloadError(_too_deep()) from None
    try:  # the stdlib parser accepts NaN/Infinity and integers beyond 64 bits, which the validation names
        return json.loads(body)
    except RecursionError:
        raise PayloadError(_too_deep()) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"The request body is not valid JSON ({exc}). Send a JSON object.") from None


def _too_deep() -> str:
    return (
        "The request body is JSON nested hundreds of levels deep; a scoring request needs at most four "
        '(e.g. {"dataframe_split": {"columns": [...], "data": [[...]]}}).'
    )


def check_content_type(header: bytes | None) -> None:
    """Refuse (415) a body declared as anything but JSON; a body without a content type is taken as JSON."""
    ctype = (header or b"application/json").split(b";")[0].strip().lower()
    if ctype not in (b"application/json", b""):
        raise PayloadError(
            f"Content type '{ctype.decode(errors='replace')[:60]}' is not supported: send JSON with "
            "Content-Type: application/json.",
            415,
        )


def too_large_message(size: int) -> str:
    return (
        f"The request body has {size} bytes, more than the limit of {MAX_BODY_BYTES} bytes: "
        "split the rows into smaller batches."
    )


def parse_predict(payload: dict[str, Any], features: Sequence[str]) -> np.ndarray:
    """Rows of a ``/predict`` request (``instances`` or ``records``) as a float matrix."""
    keys = [k for k in ("instances", "records") if k in payload]
    if len(keys) != 1:
        raise PayloadError(
            f"/predict needs exactly one of the fields 'instances' (list of rows) or 'records' (list of objects); "
            f'got fields {sorted(payload)}. Example: {{"instances": [[5.1, 3.5, 1.4, 0.2]]}}.'
        )
    if keys[0] == "records":
        return records_matrix(payload["records"], features, "records")
    return rows_matrix(payload["instances"], features, "instances")


def parse_invocations(payload: dict[str, Any], features: Sequence[str]) -> np.ndarray:
    """Rows of an MLflow ``/invocations`` request as a float matrix."""
    keys = [k for k in INVOCATION_FORMATS if k in payload]
    if len(keys) != 1:
        raise PayloadError(
            f"The input must be a JSON object with exactly one of the fields {list(INVOCATION_FORMATS)}; "
            f"got fields {sorted(payload)}."
        )
    key = keys[0]
    data = payload[key]
    if key == "dataframe_split":
        return split_matrix(data, features)
    if key == "dataframe_records":
        return records_matrix(data, features, key)
    if key == "inputs" and isinstance(data, dict):
        return columns_matrix(data, features)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return records_matrix(data, features, key)
    return rows_matrix(data, features, key)


def rows_matrix(rows: Any, features: Sequence[str], where: str) -> np.ndarray:
    """A list of rows (lists of numbers, one per feature, in the model's order) as a float matrix."""
    if not isinstance(rows, list) or not rows:
        raise PayloadError(f"'{where}' must be a non-empty list of rows, each a list of {len(features)} numbers.")
    n = len(features)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise PayloadError(
                f"'{where}' row {i} is a {type(row).__name__}, not a list: send each row as a list of {n} numbers "
                f"in the order {list(features)}."
            )
        if len(row) != n:
            raise PayloadError(
                f"'{where}' row {i} has {len(row)} values but the model expects {n} features {list(features)}."
            )
        for j, value in enumerate(row):
            if type(value) not in _NUMBER_TYPES:
                raise PayloadError(
                    f"'{where}' row {i}, feature '{features[j]}': {shown(value)} is not a number; send numbers (in cm)."
                )
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond the float range
        matrix = np.array([[float(v) if abs(v) < 1e300 else np.inf for v in row] for row in rows])
    return _finite(matrix, features, where)


def records_matrix(records: Any, features: Sequence[str], where: str) -> np.ndarray:
    """A list of objects ``{feature: number}`` as a float matrix in the model's feature order."""
    if not isinstance(records, list) or not records:
        raise PayloadError(f"'{where}' must be a non-empty list of objects with the fields {list(features)}.")
    wanted = set(features)
    rows = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(
                f"'{where}' item {i} is a {type(record).__name__}, not an object with fields {list(features)}."
            )
        if record.keys() != wanted:
            missing = [f for f in features if f not in record]
            unknown = sorted(set(record) - wanted)
            problems = ([f"misses {missing}"] if missing else []) + (
                [f"has unknown fields {unknown}"] if unknown else []
            )
            raise PayloadError(
                f"'{where}' item {i} {' and '.join(problems)}; the model expects exactly {list(features)}."
            )
        rows.append([record[f] for f in features])
    return rows_matrix(rows, features, where)


def split_matrix(split: Any, features: Sequence[str]) -> np.ndarray:
    """pandas ``orient="split"``: ``{"columns": [...], "data": [[...]]}`` (columns optional, then positional)."""
    if not isinstance(split, dict) or "data" not in split:
        raise PayloadError(
            "'dataframe_split' must be an object {\"columns\": [...], \"data\": [[...], ...]} (pandas orient='split')."
        )
    if "columns" not in split:
        return rows_matrix(split["data"], features, "dataframe_split.data")
    columns = split["columns"]
    if (
        not isinstance(columns, list)
        or not all(isinstance(c, str) for c in columns)
        or set(columns) != set(features)
        or len(columns) != len(features)
    ):
        raise PayloadError(
            f"'dataframe_split.columns' is {shown(columns)}; the model expects exactly the columns {list(features)}."
        )
    matrix = rows_matrix(split["data"], columns, "dataframe_split.data")
    order = [columns.index(f) for f in features]
    return matrix[:, order] if order != list(range(len(features))) else matrix


def columns_matrix(columns: dict[str, Any], features: Sequence[str]) -> np.ndarray:
    """``{"inputs": {feature: [values...]}}`` (column-oriented) as a float matrix."""
    if set(columns) != set(features):
        raise PayloadError(f"'inputs' has the columns {sorted(columns)}; the model expects exactly {list(features)}.")
    values = [columns[f] for f in features]
    if not all(isinstance(v, list) for v in values) or len({len(v) for v in values}) != 1 or not values[0]:
        raise PayloadError("Each column of 'inputs' must be a non-empty list, all of the same length.")
    return rows_matrix([list(r) for r in zip(*values, strict=True)], features, "inputs")


def _finite(matrix: np.ndarray, features: Sequence[str], where: str) -> np.ndarray:
    if not np.isfinite(matrix).all():
        i, j = map(int, np.argwhere(~np.isfinite(matrix))[0])
        raise PayloadError(
            f"'{where}' row {i}, feature '{features[j]}' is {matrix[i, j]} (NaN or infinite, or beyond the float "
            "range): impute or drop rows with missing measurements before sending them."
        )
    if (np.abs(matrix) > MAX_ABS_VALUE).any():
        i, j = map(int, np.argwhere(np.abs(matrix) > MAX_ABS_VALUE)[0])
        raise PayloadError(
            f"'{where}' row {i}, feature '{features[j]}' is {matrix[i, j]:g}, beyond the accepted range of "
            f"±{MAX_ABS_VALUE:g}: check the units and the encoding of that value."
        )
    return matrix
