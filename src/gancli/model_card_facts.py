"""What a model card says, gathered: the user's inputs (license, hub id, evaluation reports) checked, and the
facts of the exported model (its config, settings, evaluation reports of this very checkpoint, training log)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

MAX_REPORT_BYTES = 4 * 1024 * 1024
MAX_FOUND_REPORTS = 50  # JSON files looked at in the run folder
DEFAULT_LICENSE = "unknown"
FOLDER_PLACEHOLDER = "path/to/this-folder"
SETTINGS_NAME = "training.toml"


@dataclass
class CardInputs:
    """What the user adds to the card: the license, the hub id it will have, evaluation reports."""

    license: Optional[str] = None
    repo_id: Optional[str] = None
    eval_reports: list[Path] = field(default_factory=list)


@dataclass
class CardFacts:
    config: dict[str, Any]  # the folder's config.json
    license: str
    reference: str  # how the usage lines name the model: the hub id, or a placeholder path
    repo_id: Optional[str]
    datasets: list[str]
    parameters: int
    image: Optional[str]
    settings_toml: Optional[str]  # None: the stored config no longer validates; the card shows it as JSON
    evaluations: list[dict[str, Any]]
    training_log: Optional[dict[str, Any]]
    parity: dict[str, Any]
    summary: str = ""
    paper: str = ""
    skipped_reports: list[tuple[str, str]] = field(default_factory=list)


def check_inputs(inputs: CardInputs, *, sha256: str, generator: str) -> list[dict[str, Any]]:
    """Validate what the user gave for the card before any work; returns the --eval-report reports.

    ``generator``: "G_ema" or "G", the weights being exported (a report must have measured those).
    """
    from gancli.errors import GancliError

    license = inputs.license or DEFAULT_LICENSE
    if not _is_license_id(license):
        raise GancliError(f"--license must be a license identifier such as apache-2.0, mit or cc-by-4.0; got {license!r}")
    if inputs.repo_id is not None:
        from gancli.hub import parse_hub_id

        parsed = parse_hub_id(inputs.repo_id)
        if parsed is None or parsed[1] is not None:
            raise GancliError(f"--repo-id must be a hub model id owner/name; got {inputs.repo_id!r}")
    reports = []
    for path in inputs.eval_reports:
        report, why = _read_report(Path(path), sha256, generator)
        if report is None:
            raise GancliError(f"--eval-report {path}: {why}")
        reports.append(report)
    return reports


def collect(ckpt, config: dict[str, Any], inputs: CardInputs, *, sha256: str, generator, image: Optional[str],
            parity: dict[str, Any]) -> CardFacts:
    license = inputs.license or DEFAULT_LICENSE
    run_folder = _run_folder(ckpt.path)
    generator_name = config["exported_from"]["weights"]
    evaluations = check_inputs(inputs, sha256=sha256, generator=generator_name)
    skipped = []
    if run_folder is not None:
        explicit = {Path(p).resolve() for p in inputs.eval_reports}
        for path in _report_candidates(run_folder):
            if path.resolve() in explicit:
                continue
            report, why = _read_report(path, sha256, generator_name)
            if report is not None:
                evaluations.append(report)
            elif why != "not a gancli evaluation report":
                skipped.append((str(path), why))
    summary, paper = _family_text(ckpt.family)
    return CardFacts(
        config=config, license=license, reference=inputs.repo_id or FOLDER_PLACEHOLDER, repo_id=inputs.repo_id,
        datasets=_datasets(config["config"].get("data", {})), image=image, parity=parity,
        parameters=sum(p.numel() for p in generator.parameters()),
        settings_toml=_settings_toml(config["config"]), evaluations=evaluations,
        training_log=_training_log(run_folder, ckpt.step) if run_folder is not None else None,
        summary=summary, paper=paper, skipped_reports=skipped,
    )


def _is_license_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isalnum() or c in "-._+" for c in text)


def _run_folder(checkpoint: Path) -> Optional[Path]:
    """RUN for RUN/checkpoints/NAME.safetensors (a folder with metrics.jsonl or config.toml), else None."""
    folder = checkpoint.parent
    if folder.name != "checkpoints":
        return None
    run = folder.parent
    return run if (run / "metrics.jsonl").is_file() or (run / "config.toml").is_file() else None


def _family_text(family: str) -> tuple[str, str]:
    try:
        from gancli.plugins import get_record

        record = get_record(family)
        return record.family.summary, record.family.paper
    except Exception:  # the card still describes the model without the plugin's words
        return "", ""


def _datasets(data: dict[str, Any]) -> list[str]:
    """The hub id of the training data, when it has one (the card's ``datasets`` must be hub ids)."""
    from gancli.data.hub_datasets import ALIASES
    from gancli.hub import parse_hub_id

    source = str(data.get("source") or "")
    if source in ALIASES:
        return [ALIASES[source][1]]
    if source and not Path(source).expanduser().exists():
        parsed = parse_hub_id(source)
        if parsed is not None:
            return [parsed[0]]
    return []


def _settings_toml(config: dict[str, Any]) -> Optional[str]:
    """The resolved config as a recipe; None for a config this gancli no longer validates (another version)."""
    from gancli.config import RunConfig, to_toml

    try:
        return to_toml(RunConfig.model_validate(config))
    except Exception:
        return None


def _training_log(run: Path, step: int) -> Optional[dict[str, Any]]:
    """The last metrics.jsonl line at or before the checkpoint's step (lines after it belong to a later model)."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return None
    last = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                values = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if isinstance(values, dict) and isinstance(values.get("step"), int) and values["step"] <= step:
                last = values
    return last


def _report_candidates(run: Path) -> list[Path]:
    found = sorted(run.glob("*.json")) + sorted((run / "eval").glob("*.json")) + sorted((run / "checkpoints").glob("*.json"))
    return found[:MAX_FOUND_REPORTS]


def _read_report(path: Path, sha256: str, generator: str) -> tuple[Optional[dict[str, Any]], str]:
    """(the report, "") when ``path`` is a gancli eval report of this checkpoint's exported generator, else (None, why)."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return None, f"larger than {MAX_REPORT_BYTES >> 20} MiB"
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no such file"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None, "not a gancli evaluation report"
    if not (isinstance(report, dict) and str(report.get("format", "")).startswith("gancli-eval/")
            and isinstance(report.get("results"), dict) and isinstance(report.get("protocol"), dict)):
        return None, "not a gancli evaluation report"
    source = report["protocol"].get("source")
    if not isinstance(source, dict) or source.get("kind") != "checkpoint":
        return None, "it measures a dataset, not this model"
    if source.get("checkpoint_sha256") != sha256:
        return None, "it measures another checkpoint (sha256 differs)"
    if source.get("generator") != generator:
        return None, f"it measures the {source.get('generator')} generator, the export holds {generator}"
    return report, ""
