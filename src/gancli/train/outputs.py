"""What a run writes besides checkpoints, all on the main process: the fixed-latent sample grid (and, for
2-D runs, the GAN Lab-style animation's frames), the grid at the end of each stage with RUN/growth.gif,
and one metrics line per logged step."""
from __future__ import annotations

import json
from typing import Any, Optional

import torch

from gancli.plugins import PluginFault
from gancli.train.failures import write_error
from gancli.train.rundir import RunDir


class SideOutputs:
    def __init__(self, *, run, spec, data, rundir: RunDir, accelerator, record, G, D, objective, ema, main: bool,
                 resume_step: Optional[int]) -> None:
        from gancli.sampling import latents

        self.run, self.spec, self.data, self.rundir = run, spec, data, rundir
        self.accelerator, self.record, self.G, self.D, self.objective, self.ema = accelerator, record, G, D, objective, ema
        self.trackers = None  # gancli.train.tracking.Trackers: each sample grid also goes to them
        device = accelerator.device
        num_classes = int(getattr(G, "num_classes", 0) or 0)
        self.fixed_z = latents(run.train.sample_grid, int(getattr(G, "z_dim")), seed=run.train.seed).to(device)
        self.fixed_y = (torch.arange(run.train.sample_grid, device=device) % num_classes) if num_classes else None
        self.lab = None
        if main and spec.kind == "points" and spec.dim == 2:
            from gancli.train.lab import Lab

            self.lab = Lab.for_run(rundir.root, data.values, resume_step=resume_step, seed=run.train.seed)
        try:
            self.metrics_file = open(rundir.metrics, "a", encoding="utf-8") if main else None
        except OSError as exc:
            raise write_error(rundir, rundir.metrics, exc) from None

    def grid(self, at_step: int):
        """The sampling network (the EMA copy when there is one) and its grid of the fixed latents."""
        from gancli.sampling import image_grid, points_plot

        model = self.ema.model if self.ema is not None else self.G
        was_training = model.training
        model.eval()
        with torch.no_grad(), self.accelerator.autocast(), PluginFault(self.record, f"sampling at step {at_step}"):
            x = model(self.fixed_z, self.fixed_y).float().cpu()
        model.train(was_training)
        if self.spec.kind == "points":
            return model, points_plot(x, reference=self.data.values[: min(len(self.data), 2000)])
        from gancli.data.images import to_uint8

        return model, image_grid(to_uint8(x))

    def samples(self, at_step: int) -> None:
        model, image = self.grid(at_step)
        self._save(image, self.rundir.sample_path(at_step))
        if self.trackers is not None:
            self.trackers.image("samples", image, at_step)
        if self.lab is not None:
            with PluginFault(self.record, f"drawing the lab frame at step {at_step}"):
                self.lab.record(at_step, model, self.D, self.objective)

    def stage(self, label: str, at_step: int) -> None:
        """The grid at the end of a stage (growth phase), for RUN/growth.gif."""
        from gancli.train.stages import stage_path

        _, image = self.grid(at_step)
        self._save(image, stage_path(self.rundir.samples, label))

    def growth_gif(self) -> None:
        from gancli.train.stages import write_growth_gif

        write_growth_gif(self.rundir.samples, self.rundir.root / "growth.gif")

    def lab_gif(self) -> None:
        if self.lab is None:
            return
        try:
            self.lab.write()
        except OSError as exc:
            raise write_error(self.rundir, self.rundir.root / "lab.gif", exc) from None

    def metrics_line(self, line: dict[str, Any]) -> None:
        try:
            # one write per line, flushed: a kill can cut only the last line short
            self.metrics_file.write(json.dumps(line) + "\n")
            self.metrics_file.flush()
        except OSError as exc:
            raise write_error(self.rundir, self.rundir.metrics, exc) from None

    def curves(self) -> None:
        """RUN/curves.png (gancli plot's figure) when matplotlib is installed; GANCLI_CURVES=0 turns it off.
        A figure that cannot be drawn is a warning, never the end of a run."""
        import os
        import sys

        from gancli.curves import have_matplotlib, plot_runs

        if os.environ.get("GANCLI_CURVES", "1") == "0" or not have_matplotlib():
            return
        try:
            plot_runs([self.rundir.root], self.rundir.root / "curves.png")
        except Exception as exc:  # noqa: BLE001 - a picture must not stop training
            print(f"warning: could not draw {self.rundir.root / 'curves.png'}: {exc}", file=sys.stderr)

    def close(self) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()

    def _save(self, image, path) -> None:
        from gancli.sampling import save_image

        try:
            save_image(image, path)
        except OSError as exc:
            raise write_error(self.rundir, path, exc) from None
