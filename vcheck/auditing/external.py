"""Fits from any language: cases exported as files, fits read back as files, audited against live lme4.

    vcheck cases export DIR --cases N --seed S [--families ...]   # DIR/<case>/data.csv, case.json
    <your program>                                               # writes DIR/<case>/fit.json
    vcheck audit --fits DIR                                       # compares them with lme4

`case.json` (schema `vcheck/schemas/case.schema.json`) gives the formula, REML, the number of rows and
each column's type, factors with their levels in R's order (the first is the reference level), so a
program in Julia, C++ or R reads data.csv into the same model lme4 fits.  `fit.json` (schema
`vcheck/schemas/fit.schema.json`) holds beta {name: value}, sigma, varcorr [[group, var1, var2 or
null, covariance]] and optionally criterion, V (n x n, data.csv's row order), configuration, warnings,
converged and implementation {name, version}; or `unsupported` with a reason.  Both are validated
against their schema on reading; a malformed or missing fit.json is that case's error, with the reason.

`audit_fits(DIR)` runs the plug-in audit (`vcheck.auditing.run.audit`) with `ExternalFits(DIR)` as the
implementation: it answers each case with the fit.json written for it, found by the case's formula,
REML flag and data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vcheck import schemas
from vcheck.auditing.cases import Case
from vcheck.core.errors import DataError, Unsupported, VcheckError
from vcheck.core.factors import as_factor, label

__all__ = [
    "CASE_FORMAT",
    "ExternalFits",
    "FitFileError",
    "case_id",
    "export_cases",
    "fit_document",
    "read_case",
    "read_cases",
    "read_fit",
    "schema",
    "write_fit",
]

CASE_FORMAT = "vcheck-case/1"
#: fit_document writes V (n x n, as JSON lists) only up to this many rows
FIT_V_MAX_ROWS = 5000
CASE_FILE, DATA_FILE, FIT_FILE = "case.json", "data.csv", "fit.json"


class FitFileError(VcheckError, ValueError):
    """A fit.json (or case.json) that is missing, not JSON, or not what its schema says."""


# --- schemas ------------------------------------------------------------------------------------------
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema shipped with vcheck: "case" or "fit" (`vcheck.schemas.load`, which caches it)."""
    return schemas.load(name)


def validate(document: Any, name: str, where: str) -> None:
    """Raise FitFileError with the first schema violation (its JSON path and message)."""
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FitFileError("reading case and fit files needs jsonschema: pip install jsonschema") from exc
    validator = jsonschema.Draft202012Validator(schemas.load(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise FitFileError(f"{where} does not follow {name}.schema.json at {path}: {error.message}")


# --- export -------------------------------------------------------------------------------------------
def case_id(case: Case, position: int = 0) -> str:
    """A directory-safe, stable name: drawn-<seed>-<index>, example-<name>, case-<position>."""
    if case.origin == "drawn":
        return f"drawn-{case.seed}-{case.index:04d}"
    if case.origin == "example":
        return f"example-{case.name}"
    return f"case-{position:04d}"


def column_types(data: pd.DataFrame) -> list[dict[str, Any]]:
    """Each column's R type; strings and categoricals are factors with their levels in R's order."""
    out: list[dict[str, Any]] = []
    for name in data.columns:
        s = data[name]
        col: dict[str, Any] = {"name": str(name)}
        if isinstance(s.dtype, pd.CategoricalDtype):
            col["type"] = "ordered" if s.cat.ordered else "factor"
            col["levels"] = [label(c) for c in s.cat.categories]
        elif pd.api.types.is_bool_dtype(s.dtype):
            col["type"] = "logical"
        elif pd.api.types.is_integer_dtype(s.dtype):
            col["type"] = "integer"
        elif pd.api.types.is_float_dtype(s.dtype):
            col["type"] = "numeric"
        else:
            col["type"] = "factor"
            col["levels"] = list(as_factor(s).levels)
        out.append(col)
    return out


def csv_text(data: pd.DataFrame) -> str:
    """data.csv: factors by label, logicals TRUE/FALSE, numbers to full precision, NA for missing."""
    out = pd.DataFrame(index=range(len(data)))
    for name in data.columns:
        s = data[name].reset_index(drop=True)
        if pd.api.types.is_bool_dtype(s.dtype):
            out[name] = np.where(s.to_numpy(), "TRUE", "FALSE")
        elif isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            out[name] = [None if _na(v) else label(v) for v in s.tolist()]
        else:
            out[name] = s
    return str(out.to_csv(index=False, na_rep="NA", lineterminator="\n"))


def _na(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def case_document(case: Case, cid: str) -> dict[str, Any]:
    """case.json's content for one case."""
    from vcheck import __version__
    from vcheck.auditing import capabilities

    data = case.data
    doc: dict[str, Any] = {
        "format": CASE_FORMAT,
        "id": cid,
        "formula": case.formula,
        "REML": bool(case.REML),
        "n": len(data),
        "data": DATA_FILE,
        "columns": column_types(data),
        "needs": sorted(capabilities.needs_of(case.formula, data, case.REML)),
        "vcheck": __version__,
    }
    if case.origin != "inline":
        doc["address"] = case.to_dict(with_data=False)
        doc["rebuild"] = case.rebuild
    return doc


def export_cases(directory: Path, cases: Iterable[Case]) -> list[Path]:
    """Write each case as DIRECTORY/<case>/data.csv and case.json; returns the case directories."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for position, case in enumerate(cases):
        cid = case_id(case, position)
        folder = directory / cid
        folder.mkdir(exist_ok=True)
        (folder / DATA_FILE).write_text(csv_text(case.data), encoding="utf-8")
        doc = case_document(case, cid)
        (folder / CASE_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        out.append(folder)
    return out


# --- reading cases back -------------------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FitFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise FitFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise FitFileError(f"{path} is not JSON: {exc.msg} at {where}") from None


def read_data(folder: Path, doc: Mapping[str, Any]) -> pd.DataFrame:
    """data.csv with case.json's column types: factors as categoricals with R's level order."""
    path = folder / DATA_FILE
    columns = {c["name"]: c for c in doc["columns"]}
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=["NA"])
    except FileNotFoundError:
        raise FitFileError(f"{path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FitFileError(f"{path} is not a readable CSV: {' '.join(str(exc).split())}") from None
    if list(raw.columns) != list(columns):
        raise FitFileError(f"{path} has columns {list(raw.columns)}, case.json says {list(columns)}")
    if len(raw) != doc["n"]:
        raise FitFileError(f"{path} has {len(raw)} rows, case.json says {doc['n']}")
    data: dict[str, Any] = {}
    for name, col in columns.items():
        s = raw[name]
        kind = col["type"]
        try:
            if kind == "numeric":
                data[name] = pd.to_numeric(s).astype(float).to_numpy()
            elif kind == "integer":
                data[name] = s.astype("Int64") if s.isna().any() else s.astype(np.int64).to_numpy()
            elif kind == "logical":
                data[name] = s.map({"TRUE": True, "FALSE": False}).astype(bool).to_numpy()
            else:
                unknown = set(s.dropna()) - set(col["levels"])
                if unknown:
                    outside = sorted(unknown)
                    raise FitFileError(f"{path}: column {name} has values outside its levels: {outside}")
                data[name] = pd.Categorical(s, categories=col["levels"], ordered=kind == "ordered")
        except (ValueError, TypeError) as exc:
            raise FitFileError(f"{path}: column {name} is not {kind}: {exc}") from None
    return pd.DataFrame(data)


def read_case(folder: Path) -> Case:
    """The case of an exported folder (validated), with its data: an inline case named by its id."""
    doc = _load_json(folder / CASE_FILE)
    validate(doc, "case", str(folder / CASE_FILE))
    data = read_data(folder, doc)
    address = doc.get("address", {})
    return Case(
        formula=doc["formula"],
        REML=bool(doc["REML"]),
        origin="inline",
        name=str(doc["id"]),
        spec=address.get("spec"),
        features=tuple(address.get("features", ())),
        _data=data,
    )


def case_folders(directory: Path) -> list[Path]:
    """The case folders of an export (those holding a case.json), sorted by name."""
    if not directory.is_dir():
        raise FitFileError(f"{directory} is not a directory of exported cases")
    folders = sorted(p for p in directory.iterdir() if (p / CASE_FILE).is_file())
    if not folders:
        raise FitFileError(f"{directory} holds no exported case (no */{CASE_FILE}): 'vcheck cases export'")
    return folders


def read_cases(directory: Path) -> list[Case]:
    """Every exported case under `directory`, in folder-name order."""
    return [read_case(folder) for folder in case_folders(directory)]


# --- fit.json -----------------------------------------------------------------------------------------
def read_fit(path: Path, n: int | None = None) -> dict[str, Any]:
    """fit.json as a plug-in answer (beta, sigma, varcorr, criterion, V, ...), validated.

    Raises FitFileError for a missing or malformed file, Unsupported when it says `unsupported`."""
    doc = _load_json(path)
    validate(doc, "fit", str(path))
    if "unsupported" in doc:
        raise Unsupported(str(doc["unsupported"]))
    out: dict[str, Any] = {
        "beta": {k: (math.nan if v is None else float(v)) for k, v in doc["beta"].items()},
        "sigma": float(doc["sigma"]),
        "varcorr": [tuple(row) for row in doc["varcorr"]],
        "source": str(doc.get("implementation", {}).get("name", "fit.json")),
    }
    if doc.get("criterion") is not None:
        out["criterion"] = float(doc["criterion"])
    if "V" in doc:
        V = doc["V"]
        if n is not None and (len(V) != n or any(len(row) != n for row in V)):
            shape = f"{len(V)} x {', '.join(sorted({str(len(r)) for r in V})) or '0'}"
            raise FitFileError(f"{path}: V must be n x n = {n} x {n} (data.csv's rows), not {shape}")
        out["V"] = np.asarray(V, dtype=float)
    for key in ("REML", "configuration", "warnings", "converged"):
        if key in doc:
            out[key] = doc[key]
    if "implementation" in doc:
        impl = doc["implementation"]
        out["versions"] = {str(impl.get("name", "implementation")): str(impl.get("version", "?"))}
    return out


def fit_document(output: Any, *, configuration: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """fit.json's content from a plug-in's answer (a mapping or an LmerFit), V included when it has one
    with at most FIT_V_MAX_ROWS rows (fit.json holds V as an n x n list: beyond, it is left out, and the
    audit reads V as not given, never a dense n x n V in memory or on disk)."""
    from vcheck.auditing.plugin import submission

    sub = submission(output)
    if sub.beta is None or sub.sigma is None or sub.varcorr is None:
        raise FitFileError("a fit needs beta, sigma and varcorr")
    doc: dict[str, Any] = {
        "beta": {k: (None if not math.isfinite(v) else float(v)) for k, v in sub.beta.items()},
        "sigma": float(sub.sigma),
        "varcorr": [list(row) for row in sub.varcorr],
    }
    if sub.criterion is not None:
        doc["criterion"] = float(sub.criterion)
    if sub.V is not None and sub.V.shape[0] <= FIT_V_MAX_ROWS:
        V = sub.V.toarray() if hasattr(sub.V, "toarray") else np.asarray(sub.V @ np.eye(sub.V.shape[0]))
        doc["V"] = np.asarray(V, dtype=float).tolist()
    if sub.REML is not None:
        doc["REML"] = bool(sub.REML)
    if configuration is not None:
        doc["configuration"] = configuration
    return doc


def write_fit(folder: Path, document: Mapping[str, Any]) -> Path:
    """Write DIR/<case>/fit.json (validated first: vcheck writes only what it would accept)."""
    validate(dict(document), "fit", str(folder / FIT_FILE))
    path = folder / FIT_FILE
    path.write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --- the audit of an export ---------------------------------------------------------------------------
def fingerprint(formula: str, data: pd.DataFrame, REML: bool) -> str:
    """What identifies a case's fit among an export's: formula, REML and the data's values."""
    h = hashlib.sha1(f"{formula}\0{bool(REML)}\0".encode())
    h.update(",".join(map(str, data.columns)).encode())
    h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return h.hexdigest()


class ExternalFits:
    """The implementation of an export: answers a case with the fit.json written for it."""

    def __init__(self, directory: Path, cases: Sequence[Case], name: str | None = None) -> None:
        self.directory = Path(directory)
        self.folders = {fingerprint(c.formula, c.data, c.REML): self.directory / str(c.name) for c in cases}
        self.name = self.__name__ = name or f"fits:{self.directory}"
        self.configurations: dict[str, Any] = {}  # case id -> the configuration its fit.json names

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool = True) -> dict[str, Any]:
        folder = self.folders.get(fingerprint(formula, data, REML))
        if folder is None:
            raise DataError("this case was not exported to the fits directory")
        if not (folder / FIT_FILE).is_file():
            raise FitFileError(f"no {FIT_FILE} in {folder}: the program wrote no fit for this case")
        out = read_fit(folder / FIT_FILE, n=len(data))
        if "configuration" in out:
            self.configurations[folder.name] = out["configuration"]
        return out


def audit_fits(directory: Path, **options: Any) -> Any:
    """`vcheck audit --fits DIR`: every exported case's fit.json against live lme4 (`run.audit`)."""
    from vcheck.auditing.run import audit

    cases = read_cases(Path(directory))
    impl = ExternalFits(Path(directory), cases)
    options.setdefault("name", impl.name)
    return audit(impl, cases=cases, **options)
