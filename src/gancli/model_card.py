"""The README.md model card of an exported model folder: YAML front matter and a body for people.

The front matter follows the Hugging Face model card metadata (``library_name``, ``license``,
``tags``, ``datasets``, ``pipeline_tag``); it is written with JSON-quoted scalars, which YAML
reads as they are. The body says what the model is, shows its samples, how to sample from it
(command line and Python), the training settings, and the measurements recorded for this very
checkpoint, each with its protocol: evaluation reports of ``gancli eval --out`` whose source is
the exported checkpoint (matched by sha256 and generator), and the last training-log values,
labelled as the training losses they are. No number appears without saying what it measures.
"""
from __future__ import annotations

import json
import math
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


# ---------------------------------------------------------------- gathering


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


# ---------------------------------------------------------------- writing


def render(facts: CardFacts) -> str:
    return _front_matter(facts) + "\n" + _body(facts)


def front_matter(facts: CardFacts) -> dict[str, Any]:
    config = facts.config
    conditional = config["num_classes"] > 0
    tags = ["gancli", "gan", config["family"], "pytorch"]
    if config["kind"] == "image":
        tags.append("class-conditional-image-generation" if conditional else "unconditional-image-generation")
    meta: dict[str, Any] = {"library_name": "gancli", "license": facts.license, "tags": tags}
    if facts.datasets:
        meta["datasets"] = facts.datasets
    if config["kind"] == "image" and not conditional:
        meta["pipeline_tag"] = "unconditional-image-generation"
    return meta


def _front_matter(facts: CardFacts) -> str:
    lines = ["---"]
    for key, value in front_matter(facts).items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"- {json.dumps(item, ensure_ascii=False)}" for item in value]
        else:
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines + ["---"]) + "\n"


def _body(facts: CardFacts) -> str:
    parts = [_introduction(facts), _usage(facts), _model_table(facts), _training(facts), _evaluation(facts),
             _files(facts), _upload(facts)]
    return "\n\n".join(part.rstrip("\n") for part in parts if part) + "\n"


def _describe_output(config: dict[str, Any]) -> str:
    if config["kind"] == "points":
        return f"{config['dim']}-D points"
    return f"{config['channels']}×{config['resolution']}×{config['resolution']} images"


def _introduction(facts: CardFacts) -> str:
    config = facts.config
    data = config["config"].get("data", {})
    name = config["data_spec"].get("name") or data.get("source") or "its data"
    conditional = config["num_classes"] > 0
    kind = "class-conditional " if conditional else ""
    lines = [f"# {config['family']} on {name}", ""]
    lines.append(f"A {kind}`{config['family']}` generator of {_describe_output(config)}, trained with "
                 f"[gancli](https://pypi.org/project/gancli/) on {name} and exported with `gancli export --format hf`.")
    if facts.summary:
        lines += ["", f"The family: {facts.summary.rstrip('.')}." + (f" Paper: {facts.paper}." if facts.paper else "")]
    if facts.image:
        if config["kind"] == "points":
            what = "2,000 samples (seed 0) as a scatter plot"
        elif conditional:
            shown = min(config["num_classes"], 10)
            what = (f"one row of 8 samples per class (seed 0){'' if shown == config['num_classes'] else f', the first {shown} classes'}")
        else:
            what = "64 samples, seed 0"
        weights = "EMA" if config["weights"] == "ema" else "trained (raw)"
        lines += ["", f"![Samples from this model]({facts.image})", "",
                  f"*{what}; drawn from the files of this folder ({weights} generator, {config['dtype']}).*"]
    return "\n".join(lines)


def _usage(facts: CardFacts) -> str:
    config = facts.config
    ref = facts.reference
    plugin = config["plugin"]["distribution"]
    conditional = config["num_classes"] > 0
    lines = ["## Using it", "", "```bash", f"pip install gancli {plugin}"]
    if config["kind"] == "points":
        lines.append(f"gancli sample {ref} -n 2000 --seed 0 --out points.csv")
    else:
        lines.append(f"gancli sample {ref} -n 64 --seed 0 --out grid.png")
        if conditional:
            first = config["class_names"][0]
            lines.append(f"gancli sample {ref} -n 16 --seed 0 --class {_shell_word(first)} --out {_slug(first)}.png")
            lines.append(f"gancli sample {ref} --per-class 8 --seed 0 --out per-class.png")
        lines.append(f"gancli interpolate {ref} --seeds 1,2,3,4 --frames 16 --loop --out walk.gif")
        if config["w_space"]:
            lines.append(f"gancli sample {ref} -n 64 --seed 0 --truncation 0.7 --out truncated.png")
            lines.append(f"gancli style-mix {ref} --rows 1,2,3 --cols 4,5,6 --styles coarse --out mix.png")
    lines += ["```", "", "```python", "import gancli", "", f"pipe = gancli.load({json.dumps(ref)})"]
    if config["kind"] == "points":
        lines.append("points = pipe.sample(2000, seed=0)        # float tensor (2000, 2)")
    else:
        shape = f"(16, {config['channels']}, {config['resolution']}, {config['resolution']})"
        lines.append(f"images = pipe.sample(16, seed=0)          # float in [-1, 1], shape {shape}")
        lines.append("pixels = pipe.sample_images(16, seed=0)   # uint8")
        if conditional:
            lines.append(f"one_class = pipe.sample(16, seed=0, class_={json.dumps(config['class_names'][0])})  # by name or index")
    lines.append("```")
    if facts.repo_id is None:
        lines += ["", f"`{FOLDER_PLACEHOLDER}` is this folder on disk; once it is on the Hugging Face hub, its id "
                      f"`owner/name` works in the same places (downloaded into the hub cache; `HF_HUB_OFFLINE=1` "
                      f"uses the cache only)."]
    lines += ["", "Loading reads `config.json` and `model.safetensors` only: no pickle, no code from this folder. "
                  f"The generator's code comes from the `{plugin}` package."]
    return "\n".join(lines)


def _shell_word(text: str) -> str:
    return text if all(c.isalnum() or c in "-_." for c in text) else "'" + text.replace("'", "'\\''") + "'"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "class"


def _model_table(facts: CardFacts) -> str:
    config = facts.config
    plugin = config["plugin"]
    rows = [
        ("family", f"`{config['family']}`" + (f" ({facts.paper})" if facts.paper else "")),
        ("plugin", f"{plugin['distribution']} {plugin['version']} (plugin API {plugin['api_version']})"),
        ("generator weights", "the EMA generator (exponential moving average of G's weights)" if config["weights"] == "ema"
         else "the trained generator (no averaging)"),
        ("tensors", f"{config['dtype']}, {facts.parameters:,} parameters"),
        ("latent", f"z ∈ ℝ^{config['z_dim']}, standard normal"
         + (f"; W space: {config['num_ws']} × {config['w_dim']} (ψ-truncation towards w̄)" if config["w_space"] else "")),
        ("output", _describe_output(config) + (" in [-1, 1]" if config["kind"] == "image" else "")),
    ]
    if config["num_classes"]:
        rows.append(("classes", f"{config['num_classes']}: " + ", ".join(config["class_names"])))
    progress = config["progress"]
    rows.append(("trained for", f"{progress['step']:,} steps, {progress['images_seen']:,} images"))
    source = config.get("exported_from", {})
    if source:
        rows.append(("exported from", f"`{source.get('file')}` (sha256 `{source.get('sha256', '')[:16]}…`), "
                                      f"gancli {config['gancli_version']}"))
    parity = facts.parity
    if parity:
        same = parity["difference"] == 0
        rows.append(("check at export", ("samples identical to the checkpoint's" if same else
                                         f"samples within {parity['difference']:.3g} of the checkpoint's (fp32)")
                     + f" ({parity['compared']})"))
    return "## Model\n\n" + _table(("", ""), rows)


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _training(facts: CardFacts) -> str:
    data = facts.config["config"].get("data", {})
    described = ", ".join(f"{k} {v}" for k, v in data.items() if v not in (None, "", []))
    lines = ["## Training", "", f"Data: {described or 'not recorded'}.", ""]
    if facts.settings_toml is None:
        lines += ["The settings as the run stored them (this gancli no longer reads them as a recipe):", "",
                  "```json", json.dumps(facts.config["config"], indent=2), "```"]
    else:
        lines += [f"The resolved settings, also in `{SETTINGS_NAME}` beside this card: `gancli train --recipe "
                  f"{SETTINGS_NAME} --out RUN` trains the same way (with the data source as the run named it).",
                  "", "```toml", facts.settings_toml.rstrip("\n"), "```"]
    return "\n".join(lines)


def _evaluation(facts: CardFacts) -> str:
    lines = ["## Evaluation"]
    if not facts.evaluations:
        lines += ["", "No evaluation report of this checkpoint was found. To measure it (the numbers come with their "
                      "protocol; the extractor is part of every feature-based metric's name):", "", "```bash",
                  f"gancli eval {FOLDER_PLACEHOLDER}/model.safetensors -n 10000 --out eval.json",
                  "```", "", "and export again with `--eval-report eval.json`."]
    for report in facts.evaluations:
        lines += ["", *_report_section(report)]
    log = facts.training_log
    if log:
        numbers = [(k, v) for k, v in log.items() if k not in ("step", "images_seen", "seconds")
                   and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if numbers:
            lines += ["", f"### Training log at step {log['step']:,}", "",
                      "The last values `gancli train` logged (metrics.jsonl) at or before this checkpoint: the loss "
                      "terms of the adversarial game and the training speed, not measures of sample quality.", "",
                      _table(("logged", "value"), [(k, _number(v)) for k, v in numbers])]
    return "\n".join(lines)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _report_section(report: dict[str, Any]) -> list[str]:
    results, labels = report["results"], report.get("labels") or {}
    protocol = report["protocol"]
    spreads = {"kid_mean": "kid_std", "is_mean": "is_std", "parzen_ll_mean": "parzen_ll_sem"}
    hidden = set(spreads.values()) | {"total_modes"}
    rows = []
    for key, value in results.items():
        if key in hidden or not isinstance(value, (int, float, type(None))):
            continue
        label = labels.get(key)
        if not label:
            continue  # an unlabelled number is not shown
        text = _number(value)
        if key in spreads and isinstance(results.get(spreads[key]), (int, float)):
            text += f" ± {_number(results[spreads[key]])}"
        rows.append((label, text))
    title = report.get("title") or "gancli eval"
    lines = [f"### {title}", ""]
    lines.append(_table(("metric", "value"), rows) if rows else "(no labelled results)")
    lines += ["", "Protocol: " + _protocol_text(protocol)]
    for caveat in report.get("caveats") or []:
        if isinstance(caveat, str):
            lines.append(f"- note: {caveat}")
    return lines


def _protocol_text(protocol: dict[str, Any]) -> str:
    parts = []
    count = protocol.get("num_samples")
    if count is not None:
        seed = protocol.get("seed")
        parts.append(f"{count} generated samples" + (f" (seed {seed})" if seed is not None else ""))
    truncation = protocol.get("truncation")
    parts.append(f"truncation {truncation}" if truncation is not None else "no truncation")
    reference = protocol.get("reference")
    if isinstance(reference, dict):
        ref = reference.get("source") or reference.get("name") or "?"
        split = reference.get("split")
        ref_count = reference.get("count")
        parts.append(f"against {ref_count if ref_count is not None else ''} {ref}{f' ({split})' if split else ''}"
                     .replace("against  ", "against "))
    extractor = protocol.get("extractor")
    if isinstance(extractor, dict) and extractor:
        name = extractor.get("name") or extractor.get("kind") or "?"
        digest = extractor.get("sha256") or extractor.get("weights_sha256")
        parts.append(f"features of {name}" + (f" (sha256 {str(digest)[:12]}…)" if digest else ""))
    bn = protocol.get("bn_mode")
    if isinstance(bn, dict) and bn.get("batch_norm_layers"):
        parts.append(f"BatchNorm: {bn.get('text') or bn.get('mode')}")
    versions = [f"gancli {protocol['gancli_version']}" if protocol.get("gancli_version") else "",
                f"torch {protocol['torch_version']}" if protocol.get("torch_version") else ""]
    parts.append(", ".join(v for v in versions if v))
    return "; ".join(p for p in parts if p) + "."


def _files(facts: CardFacts) -> str:
    config = facts.config
    rows = [("`model.safetensors`", f"the generator's state dict ({config['dtype']}; names as in the {config['family']} "
                                    f"generator, no prefix)"),
            ("`config.json`", "family, plugin, latent and output sizes, classes, the data spec, the resolved settings "
                              "and the training progress gancli rebuilds the generator from")]
    if facts.settings_toml is not None:
        rows.append((f"`{SETTINGS_NAME}`", "the resolved training settings, as a recipe"))
    if facts.image:
        rows.append((f"`{facts.image}`", "the samples above"))
    rows.append(("`README.md`", "this card"))
    return "## Files\n\n" + _table(("file", "holds"), rows)


def _upload(facts: CardFacts) -> str:
    repo = facts.repo_id or "owner/name"
    return "\n".join([
        "## Sharing it on the hub", "",
        "With the hub's own client (`pip install huggingface_hub`, then `hf auth login`):", "",
        "```bash",
        f"hf upload {repo} {FOLDER_PLACEHOLDER} . --repo-type model",
        f"# huggingface_hub before 1.0: huggingface-cli upload {repo} {FOLDER_PLACEHOLDER} .",
        "```", "", "```python", "from huggingface_hub import HfApi", "",
        f'HfApi().create_repo("{repo}", exist_ok=True)',
        f'HfApi().upload_folder(repo_id="{repo}", folder_path="{FOLDER_PLACEHOLDER}", repo_type="model")',
        "```",
    ])
