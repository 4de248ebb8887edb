"""A model card's text from its facts: YAML front matter (Hugging Face model card metadata, JSON-quoted scalars,
which YAML reads as they are) and a body for people."""
from __future__ import annotations

import json
import math
from typing import Any

from gancli.model_card_facts import FOLDER_PLACEHOLDER, SETTINGS_NAME, CardFacts


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
