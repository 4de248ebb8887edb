"""The discriminator-side checks of an evaluation: D as a classifier (semi-supervised accuracy, raw and
Polyak-averaged) and the linear probe of its features."""
from __future__ import annotations

from typing import Any, Optional

from gancli.evaluation.classes import is_labelled
from gancli.evaluation.inputs import labelled_examples
from gancli.evaluation.plan import Plan, Reference


def discriminator_results(plan: Plan) -> dict:
    """D as a classifier (semi-supervised accuracy, raw and Polyak-averaged) and the linear probe."""
    from gancli.evaluation.discriminator import load_discriminator

    measured, kind = plan.measured, plan.measured.spec.kind
    classification = classify(plan.discriminator, plan.reference, plan.probe_data, kind, plan.device, plan.say)
    averaged = load_discriminator(measured.checkpoint, plan.device, averaged=True)
    if averaged is not None and "semi_supervised_accuracy" in classification:
        # openai/improved-gan reports the test accuracy of the Polyak-averaged D; report both
        polyak = classify(averaged, plan.reference, None, kind, plan.device, plan.say)
        if "semi_supervised_accuracy" in polyak:
            classification["semi_supervised_accuracy_polyak"] = {
                **polyak["semi_supervised_accuracy"], "discriminator": "Polyak average (D_ema)",
                "decay": measured.checkpoint.config.get("train", {}).get("ema_discriminator_decay"),
            }
    return classification


def classify(loaded, reference: Reference, probe_data: Optional[dict], kind: str, device, say) -> dict:
    from gancli.evaluation.discriminator import discriminator_accuracy, linear_probe

    D, record = loaded
    found: dict[str, Any] = {}
    if is_labelled(reference.data):
        values, labels = labelled_examples(reference.data, f"{reference.source} ({reference.split})")
        num_classes = int(labels.max()) + 1
        accuracy = discriminator_accuracy(D, record, values, labels, kind, num_classes, device)
        if accuracy is not None:
            say(f"D is a {num_classes}-class classifier: measured its accuracy on {len(labels)} labelled examples")
            found["semi_supervised_accuracy"] = {
                "accuracy": accuracy, "data": reference.source, "split": reference.split, "count": len(labels),
                "rule": "argmax of D's K class logits",
            }
    if probe_data is not None:
        (train_values, train_labels), (test_values, test_labels) = probe_data["train"], probe_data["test"]
        say(f"linear probe: D features of {len(train_labels)} train and {len(test_labels)} test examples")
        found["probe_accuracy"] = {
            **linear_probe(D, record, train_values, train_labels, test_values, test_labels, kind, device=device),
            **probe_data["description"],
        }
    return found
