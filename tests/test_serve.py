"""gancli serve's API through Starlette's test client: the page's calls on a W-space model (stylegan) and a
conditional one (biggan), what a downloaded image carries, refusals as 4xx with a message, run reloading,
and the command's one-line errors. The real server in a browser: test_serve_browser.py."""
from __future__ import annotations

import base64
import io
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="gancli serve needs the serve extra: pip install 'gancli[serve]'")
pytest.importorskip("uvicorn", reason="gancli serve needs the serve extra: pip install 'gancli[serve]'")
from starlette.testclient import TestClient  # noqa: E402

import gancli  # noqa: E402
from gancli.serve.app import build_app  # noqa: E402
from gancli.serve.registry import Registry  # noqa: E402
from gancli.serve.sources import resolve_sources  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.serve_load import tiny_models  # noqa: E402

STYLEGAN, BIGGAN = "/api/models/0", "/api/models/1"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """[a one-step stylegan run folder, a one-step biggan checkpoint with classes Bag, Shirt, Sneaker]."""
    return tiny_models(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def client(models):
    registry = Registry(resolve_sources(models), device="cpu")
    registry.load_all()
    with TestClient(build_app(registry, allowed_hosts=["testserver"]), raise_server_exceptions=False) as c:
        yield c


def _pixels(data_url_or_bytes) -> np.ndarray:
    data = data_url_or_bytes
    if isinstance(data, str):
        data = base64.b64decode(data.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)))


def _grid(client, model: str, **params) -> list[dict]:
    response = client.get(f"{model}/grid", params=params)
    assert response.status_code == 200, response.text
    return response.json()["images"]


def test_the_model_list_says_what_each_model_offers(client):
    stylegan, biggan = client.get("/api/models").json()["models"]
    assert (stylegan["name"], stylegan["source"], stylegan["family"]) == ("stylegan", "run", "stylegan")
    assert stylegan["w_space"] and stylegan["style_groups"] == ["coarse", "middle"] and stylegan["num_classes"] == 0
    assert biggan["class_names"] == ["Bag", "Shirt", "Sneaker"] and biggan["class_mixtures"] and not biggan["w_space"]
    assert biggan["truncation"]["off"] == 3.0 and stylegan["truncation"]["off"] is None
    assert client.get("/api/models/biggan-last").json()["index"] == 1  # by name as well as by index


def test_an_image_depends_on_its_seed_alone_and_the_download_is_what_gancli_sample_makes(client, models):
    page = _grid(client, STYLEGAN, start=0, count=8, truncation=0.5)
    later = _grid(client, STYLEGAN, start=5, count=2, truncation=0.5)
    assert [im["seed"] for im in later] == [5, 6]
    assert np.array_equal(_pixels(page[5]["src"]), _pixels(later[0]["src"]))
    response = client.get(f"{STYLEGAN}/image.png", params={"seed": 5, "truncation": 0.5})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    expected = gancli.load(models[0] / "checkpoints" / "last.safetensors", device="cpu").sample_images(1, seed=5, truncation=0.5, noise_mode="const")
    assert np.array_equal(_pixels(response.content), expected[0, 0].numpy())


def test_a_download_names_its_seed_and_settings_in_the_file_name_and_the_png_text(client):
    response = client.get(f"{BIGGAN}/image.png", params={"seed": 7, "truncation": 0.8, "class": "Sneaker"})
    assert response.headers["content-disposition"] == 'attachment; filename="biggan-last-step1-seed7-trunc0.8-class-Sneaker.png"'
    text = Image.open(io.BytesIO(response.content)).text
    assert text["gancli.seed"] == "7" and text["gancli.truncation"] == "0.8" and text["gancli.class"] == "Sneaker"
    assert text["gancli.family"] == "biggan" and text["gancli.step"] == "1"
    assert text["gancli.command"] == "gancli sample biggan-last -n 1 --seed 7 --truncation 0.8 --class 'Sneaker'"
    mix = client.get(f"{STYLEGAN}/style-mix.png", params={"source": 1, "destination": 2, "styles": "middle"})
    assert "seed2-middle-from-seed1" in mix.headers["content-disposition"]
    assert Image.open(io.BytesIO(mix.content)).text["gancli.styles"] == "middle"


def test_truncation_and_classes_change_the_images_and_a_class_name_is_its_index(client):
    full, truncated = (_grid(client, STYLEGAN, count=2, **t)[0]["src"] for t in ({}, {"truncation": 0.0}))
    assert full != truncated
    by_name = _grid(client, BIGGAN, count=3, **{"class": "Shirt"})
    by_index = _grid(client, BIGGAN, count=3, **{"class": "#1"})
    assert [im["src"] for im in by_name] == [im["src"] for im in by_index]
    assert {im["class"] for im in by_name} == {"Shirt"}
    assert [im["class"] for im in _grid(client, BIGGAN, start=3, count=3)] == ["Bag", "Shirt", "Sneaker"]  # seed mod 3
    assert _grid(client, BIGGAN, count=1, **{"class": "Bag:0.5,Sneaker:0.5"})[0]["class"] == "0.5·Bag + 0.5·Sneaker"


def test_a_walk_goes_from_image_a_to_image_b(client):
    for model, space in ((STYLEGAN, "w"), (BIGGAN, "z")):
        ends = _grid(client, model, start=3, count=2, **({"class": "#2"} if model == BIGGAN else {}))
        body = client.get(f"{model}/walk", params={"a": 3, "b": 4, "frames": 6,
                                                    **({"class": "#2"} if model == BIGGAN else {})}).json()
        assert body["space"] == space and len(body["frames"]) == 6
        first, last = _pixels(body["frames"][0]).astype(int), _pixels(body["frames"][-1]).astype(int)
        assert np.abs(first - _pixels(ends[0]["src"])).max() <= 1  # one batch vs another: rounding at most
        assert np.abs(last - _pixels(ends[1]["src"])).max() <= 1


def test_style_mixing_takes_the_chosen_layers_from_the_source(client):
    coarse, middle = (client.get(f"{STYLEGAN}/style-mix", params={"source": 1, "destination": 2, "styles": s}).json()
                      for s in ("coarse", "middle"))
    assert coarse["layers"] == [0, 1, 2, 3] and middle["layers"] == [4, 5, 6, 7]
    assert coarse["destination"] == middle["destination"] and coarse["source"] == middle["source"]
    assert len({coarse["mix"], middle["mix"], coarse["destination"], coarse["source"]}) == 4
    grid = _grid(client, STYLEGAN, start=1, count=2)
    assert np.abs(_pixels(coarse["destination"]).astype(int) - _pixels(grid[1]["src"])).max() <= 1


def test_class_mixture_and_truncation_sweep_strips(client):
    body = client.get(f"{BIGGAN}/class-mix", params={"seed": 3, "a": "Bag", "b": "Sneaker", "steps": 5}).json()
    assert (body["from"], body["to"], body["weights"]) == ("Bag", "Sneaker", [0.0, 0.25, 0.5, 0.75, 1.0])
    assert len(set(body["frames"])) == 5
    sweep = client.get(f"{BIGGAN}/truncation-sweep", params={"seed": 3, "values": "0.5,1,2", "class": "Bag"}).json()
    assert sweep["values"] == [0.5, 1.0, 2.0] and len(set(sweep["frames"])) == 3
    bag = _grid(client, BIGGAN, start=3, count=1, truncation=1.0, **{"class": "Bag"})[0]["src"]
    assert sweep["frames"][1] == bag


@pytest.mark.parametrize("url, status, words", [
    (f"{BIGGAN}/grid?class=Dress", 400, "unknown class 'Dress'"),
    (f"{BIGGAN}/grid?class=%237", 400, "out of range"),
    (f"{STYLEGAN}/grid?class=Bag", 400, "unconditional"),
    (f"{STYLEGAN}/grid?count=0", 400, "count must lie in 1..64"),
    (f"{STYLEGAN}/grid?count=100000", 400, "count must lie in 1..64"),
    (f"{STYLEGAN}/grid?start=-1", 400, "start must lie in"),
    (f"{STYLEGAN}/grid?start=99999999999", 400, "start must lie in"),
    (f"{STYLEGAN}/grid?truncation=abc", 400, "truncation must be a number"),
    (f"{STYLEGAN}/grid?truncation=inf", 400, "truncation must lie in"),
    (f"{BIGGAN}/grid?truncation=0", 400, "truncation must lie in"),
    (f"{STYLEGAN}/grid?noise=loud", 400, "noise must be one of const, random, none"),
    (f"{BIGGAN}/grid?noise=const", 400, "noise modes are for W-space models"),
    (f"{STYLEGAN}/grid?path=/etc/passwd", 400, "unknown parameter 'path'"),
    (f"{STYLEGAN}/grid?count=1&count=2", 400, "given twice"),
    (f"{STYLEGAN}/grid?class=" + "x" * 300, 400, "longer than 200"),
    (f"{STYLEGAN}/walk?frames=1", 400, "frames must lie in 2..64"),
    (f"{STYLEGAN}/style-mix?styles=fine", 400, "no fine layers"),
    (f"{STYLEGAN}/style-mix?styles=everything", 400, "styles must be one of coarse, middle, fine"),
    (f"{BIGGAN}/style-mix", 400, "needs a W-space model"),
    (f"{STYLEGAN}/class-mix?a=Bag&b=Shirt", 400, "need a conditional model"),
    (f"{BIGGAN}/class-mix?a=Bag&b=Coat", 400, "unknown class 'Coat'"),
    (f"{BIGGAN}/truncation-sweep?values=0.5,x", 400, "values must be a number"),
    (f"{BIGGAN}/truncation-sweep?values=" + ",".join(["1"] * 13), 400, "1 to 12"),
    (f"{STYLEGAN}/points.png", 400, "makes images"),
    (f"{STYLEGAN}/lab.gif", 404, "no lab animation"),
    ("/api/models/7/grid", 404, "no model '7' is served"),
    ("/api/models/..%2F..%2Fetc%2Fpasswd/grid", 404, "Not Found"),
    ("/api/models/%2Fetc%2Fpasswd/grid", 404, "Not Found"),
    ("/api/models/etc/passwd", 404, "Not Found"),
    ("/static/..%2F__init__.py", 404, "Not Found"),
    ("/static/registry.py", 404, "no static file"),
    ("/api/models?x=1", 400, "takes: no parameters"),
])
def test_bad_requests_are_a_4xx_with_a_message_never_a_500(client, url, status, words):
    response = client.get(url)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_other_methods_and_foreign_host_names_are_refused(client):
    assert client.post(f"{STYLEGAN}/grid").status_code == 405
    # a page elsewhere reaching 127.0.0.1 through its own DNS name (DNS rebinding) gets nothing
    assert client.get("/api/models", headers={"host": "attacker.example"}).status_code == 400


def test_the_page_loads_only_its_own_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace('name="viewport"', "")  # no CDN, nothing from the internet
    for name in ("app.js", "style.css"):
        body = client.get(f"/static/{name}").text
        assert "http://" not in body and "https://" not in body


def _resume_one_step(run_dir: Path) -> None:
    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve(
        "stylegan", flags={"data": {"source": str(run_dir.parent / "data"), "resolution": 32, "channels": 1},
                           "train": {"steps": 2, "batch_size": 8, "sample_every": 0, "checkpoint_every": 1}},
        overrides=["z_dim=8", "w_dim=8", "mapping_layers=2", "fmap_base=64", "fmap_max=4"])
    train(run, family_config, out=run_dir, show_progress=False, resume=True)


def test_a_run_folder_shows_its_newest_checkpoint_and_waits_for_a_first_one(models, tmp_path):
    run = tmp_path / "stylegan"
    shutil.copytree(models[0], run)
    shutil.copytree(models[0].parent / "data", tmp_path / "data")
    empty = tmp_path / "fresh-run"
    (empty / "checkpoints").mkdir(parents=True)
    registry = Registry(resolve_sources([run, empty]), device="cpu", reload_every_s=0.0)
    registry.load_all()
    with TestClient(build_app(registry, allowed_hosts=["testserver"])) as client:
        before = client.get("/api/models").json()["models"]
        assert (before[0]["step"], before[0]["version"]) == (1, 1)
        assert not before[1]["ready"] and client.get("/api/models/1/grid").status_code == 409
        old = _grid(client, "/api/models/0", count=2)
        _resume_one_step(run)
        shutil.copy(run / "checkpoints" / "last.safetensors", empty / "checkpoints" / "step-000002.safetensors")
        after = client.get("/api/models").json()["models"]
        assert (after[0]["step"], after[0]["version"]) == (2, 2)
        assert after[1]["ready"] and after[1]["step"] == 2
        assert _grid(client, "/api/models/0", count=2) != old  # the newer weights draw other images


def test_serve_without_the_extra_is_one_line_naming_it(models):
    code = ("import sys; sys.modules['uvicorn'] = None; sys.argv = ['gancli', 'serve', sys.argv[1]]; "
            "from gancli.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, str(models[1])], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: gancli serve needs the web extra: pip install 'gancli[serve]' "
                                     "(uvicorn not installed)")


def test_bad_command_lines_are_one_clear_line(cli, models, tmp_path):
    missing = cli("serve", tmp_path / "nope.safetensors")
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    assert missing.stderr.count("\n") == 1
    folder = cli("serve", tmp_path)
    assert folder.exit_code == 2 and "neither a run folder" in folder.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cli("serve", models[1], "--port", port)
    assert busy.exit_code == 2 and f"port {port} on 127.0.0.1 is already in use" in busy.stderr
    assert busy.stderr.count("\n") == 1 and "Traceback" not in busy.stderr
    assert cli("serve", models[1], "--port", 70000).exit_code == 2
    assert cli("serve", models[1], "--max-batch", 0).exit_code == 2


def test_an_exported_model_folder_serves_the_same_images(client, models, cli, tmp_path):
    folder = tmp_path / "biggan-hf"
    assert cli("export", models[1], "--format", "hf", "--out", folder).exit_code == 0
    registry = Registry(resolve_sources([folder]), device="cpu")
    registry.load_all()
    with TestClient(build_app(registry, allowed_hosts=["testserver"])) as exported:
        assert exported.get("/api/models").json()["models"][0]["source"] == "model folder"
        assert _grid(exported, "/api/models/0", count=3) == _grid(client, BIGGAN, count=3)


def test_a_2d_run_shows_generated_points_and_its_lab_animation(tmp_path):
    from gancli.config import RunConfig
    from gancli.data.sources import load_data
    from gancli.train.loop import train

    run = RunConfig.model_validate({
        "family": "gan", "data": {"source": "ring8"}, "model": {"z_dim": 4, "g_hidden": 8, "d_hidden": 8},
        "train": {"steps": 2, "batch_size": 16, "sample_every": 1, "checkpoint_every": 2, "seed": 0}})
    from gancli_plugin_gan.config import GANConfig

    train(run, GANConfig.model_validate(run.model), out=tmp_path / "ring", data=load_data("ring8"), show_progress=False)
    registry = Registry(resolve_sources([tmp_path / "ring"]), device="cpu")
    registry.load_all()
    with TestClient(build_app(registry, allowed_hosts=["testserver"])) as client:
        info = client.get("/api/models/0").json()
        assert info["kind"] == "points" and info["lab"]
        points = client.get("/api/models/0/points.png", params={"n": 256, "seed": 1})
        assert points.status_code == 200 and Image.open(io.BytesIO(points.content)).size == (256, 256)
        lab = client.get("/api/models/0/lab.gif")
        assert lab.status_code == 200 and lab.content == (tmp_path / "ring" / "lab.gif").read_bytes()
        refused = client.get("/api/models/0/grid")
        assert refused.status_code == 400 and "2-D points" in refused.json()["error"]


def test_the_job_queue_runs_torch_one_job_at_a_time_and_refuses_past_its_bound():
    import asyncio
    import threading
    import time

    from gancli.serve.jobs import Busy, JobQueue

    running, overlaps = [], []

    def job(seconds: float) -> str:
        running.append(1)
        overlaps.append(len(running))
        time.sleep(seconds)
        running.pop()
        return threading.current_thread().name

    async def main():
        queue = JobQueue(max_jobs=2, max_waiting=3)
        first = [asyncio.ensure_future(queue.run(job, 0.05)) for _ in range(5)]  # 2 on threads, 3 waiting
        await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="busy"):
            await queue.run(job, 0)
        names = await asyncio.gather(*first)
        return names, queue.waiting

    names, waiting = asyncio.run(main())
    assert len(names) == 5 and waiting == 0 and max(overlaps) == 1  # never two torch jobs at once


def test_listening_beyond_loopback_warns_and_accepts_any_host_name(cli, models, monkeypatch):
    from gancli.serve import server

    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1") and server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0") and server.allowed_hosts("0.0.0.0") == ["*"]
    assert "attacker.example" not in server.allowed_hosts("127.0.0.1")
    started = []
    monkeypatch.setattr(server, "run", lambda app, sock: started.append(server.url_of(sock)))
    result = cli("serve", models[1], "--host", "0.0.0.0", "--port", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "warning: listening on 0.0.0.0, not loopback" in result.stderr and started
    quiet = cli("serve", models[1], "--port", "0", "--device", "cpu")
    assert "warning" not in quiet.stderr and "serving 1 model at http://127.0.0.1:" in quiet.stderr
