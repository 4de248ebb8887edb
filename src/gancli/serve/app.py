"""The web app: the page, its static files and a JSON/PNG API over the served models.

Models are addressed as /api/models/{index or name}/...; no request names a path, so nothing
but the served checkpoints (and a served run's lab.gif) can be read. Wrong input is a 4xx with
a message in {"error": ...}; torch work goes through the JobQueue.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Optional, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from gancli.errors import GancliError, PluginError
from gancli.serve import rendering
from gancli.serve.jobs import Busy, JobQueue
from gancli.serve.params import MAX_SEED, BadRequest, Query
from gancli.serve.registry import NotReady, Registry, UnknownModel
from gancli.serve.rendering import Look

LOG = logging.getLogger("gancli.serve")
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
# the page loads nothing but its own files and the images it is sent
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; connect-src 'self'"
LOOK_PARAMS = ("truncation", "class", "noise")
NOISE_MODES = ("const", "random", "none")
STYLE_GROUPS = ("coarse", "middle", "fine")


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64  # images in one grid, walk, strip or sweep
    max_points: int = 4096


def build_app(registry: Registry, *, jobs: Optional[JobQueue] = None, limits: Limits = Limits(),
              allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1", "[::1]")) -> Starlette:
    """The Starlette app serving ``registry``'s models (already loaded)."""
    jobs = jobs or JobQueue()
    static = {name: resources.files("gancli.serve").joinpath("static", name).read_bytes() for name in STATIC}

    def served(request: Request):
        model = registry.get(request.path_params["model"])
        return model, model.ready_pipeline()

    def look(query: Query, pipe) -> Look:
        low, high = rendering.truncation_bounds(pipe)
        result = Look(truncation=query.number("truncation", None, low, high), class_=query.text("class"),
                      noise_mode=query.choice("noise", None, NOISE_MODES))
        rendering.check_look(pipe, result)
        return result

    def query(request: Request, *names: str) -> Query:
        return Query(request.query_params.multi_items(), names)

    def need_images(pipe) -> None:
        if pipe.spec.kind != "image":
            raise BadRequest("this model makes 2-D points, not images; see its points.png (and lab.gif for a run)")

    async def page(request: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC["index.html"],
                        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"})

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(static[name], media_type=STATIC[name], headers={"Cache-Control": "no-store"})

    async def models(request: Request) -> Response:
        query(request)
        if registry.reload_due():
            await jobs.run(registry.refresh)
        return _json({"models": [m.info() for m in registry.models],
                      "limits": {"max_batch": limits.max_batch, "max_points": limits.max_points}})

    async def model_info(request: Request) -> Response:
        query(request)
        return _json(registry.get(request.path_params["model"]).info())

    async def grid(request: Request) -> Response:
        model, pipe = served(request)
        q = query(request, "start", "count", *LOOK_PARAMS)
        need_images(pipe)
        start, count = q.seed("start", 0), q.integer("count", 16, 1, limits.max_batch)
        seeds = list(range(start, min(start + count, MAX_SEED + 1)))
        settings = look(q, pipe)

        def render():
            urls = rendering.data_urls(rendering.seed_images(pipe, seeds, settings))
            return [{"seed": s, "class": rendering.class_label(pipe, s, settings), "src": u} for s, u in zip(seeds, urls)]

        return _json({"model": model.name, "version": model.version, "images": await jobs.run(render)})

    async def image_png(request: Request) -> Response:
        model, pipe = served(request)
        q = query(request, "seed", *LOOK_PARAMS)
        need_images(pipe)
        seed, settings = q.seed("seed", 0), look(q, pipe)
        label = rendering.class_label(pipe, seed, settings)

        def render():
            from gancli.sampling import to_pil_images

            image = to_pil_images(rendering.seed_images(pipe, [seed], settings))[0]
            text = rendering.settings_text(model.name, pipe, settings, seed=seed, **{"class": label})
            text["gancli.command"] = rendering.sample_command(model.name, pipe, seed, settings)
            return rendering.png_bytes(image, text)

        name = rendering.file_name(model.name, f"step{pipe.checkpoint.step}", f"seed{seed}",
                                   _truncation_part(pipe, settings), label and f"class-{label}",
                                   pipe.w_space and f"noise-{settings.noise_mode or 'const'}")
        return _png(await jobs.run(render), name)

    async def walk(request: Request) -> Response:
        model, pipe = served(request)
        q = query(request, "a", "b", "frames", *LOOK_PARAMS)
        need_images(pipe)
        a, b = q.seed("a", 0), q.seed("b", 1)
        frames, settings = q.integer("frames", 16, 2, limits.max_batch), look(q, pipe)
        urls = await jobs.run(lambda: rendering.data_urls(rendering.walk(pipe, a, b, frames, settings)))
        return _json({"model": model.name, "version": model.version, "space": "w" if pipe.w_space else "z",
                      "interpolation": "lerp" if pipe.w_space else "slerp", "frames": urls})

    def style_mix_request(request: Request):
        model, pipe = served(request)
        q = query(request, "source", "destination", "styles", *LOOK_PARAMS)
        need_images(pipe)
        if not pipe.w_space:
            raise BadRequest(f"style mixing needs a W-space model (stylegan, stylegan2); this {pipe.family} model has none")
        source, destination = q.seed("source", 0), q.seed("destination", 1)
        return model, pipe, source, destination, q.choice("styles", "coarse", STYLE_GROUPS), look(q, pipe)

    async def style_mix(request: Request) -> Response:
        model, pipe, source, destination, styles, settings = style_mix_request(request)

        def render():
            images = rendering.style_mix(pipe, source, destination, styles, settings)
            return {key: rendering.data_urls(value)[0] for key, value in images.items()}

        return _json({"model": model.name, "version": model.version, "styles": styles,
                      "layers": pipe.style_groups()[styles], **await jobs.run(render)})

    async def style_mix_png(request: Request) -> Response:
        model, pipe, source, destination, styles, settings = style_mix_request(request)

        def render():
            from gancli.sampling import to_pil_images

            mix = rendering.style_mix(pipe, source, destination, styles, settings)["mix"]
            text = rendering.settings_text(model.name, pipe, settings, style_source=source,
                                           style_destination=destination, styles=styles)
            return rendering.png_bytes(to_pil_images(mix)[0], text)

        name = rendering.file_name(model.name, f"step{pipe.checkpoint.step}", f"seed{destination}",
                                   f"{styles}-from-seed{source}", _truncation_part(pipe, settings),
                                   f"noise-{settings.noise_mode or 'const'}")
        return _png(await jobs.run(render), name)

    async def class_mix(request: Request) -> Response:
        from gancli.conditioning import class_index

        model, pipe = served(request)
        q = query(request, "seed", "a", "b", "steps", "truncation", "noise")
        need_images(pipe)
        if not pipe.num_classes:
            raise BadRequest(f"class mixtures need a conditional model; this {pipe.family} model is unconditional")
        seed, steps = q.seed("seed", 0), q.integer("steps", 8, 2, limits.max_batch)
        a, b = (class_index(q.text(k) or "#0", pipe.class_names, pipe.num_classes) for k in ("a", "b"))
        settings = look(q, pipe)
        if not pipe.accepts_class_mixtures:
            raise BadRequest(f"class mixtures need a generator that weights its class parameters (biggan, sngan, "
                             f"sagan); this {pipe.family} generator takes one class at a time")
        urls = await jobs.run(lambda: rendering.data_urls(rendering.class_mixture(pipe, seed, a, b, steps, settings)))
        names = pipe.class_names
        return _json({"model": model.name, "version": model.version, "from": names[a], "to": names[b],
                      "weights": [round(i / (steps - 1), 4) for i in range(steps)], "frames": urls})

    async def sweep(request: Request) -> Response:
        model, pipe = served(request)
        q = query(request, "seed", "values", "class", "noise")
        need_images(pipe)
        low, high = rendering.truncation_bounds(pipe)
        default = (0.0, 0.25, 0.5, 0.75, 1.0) if pipe.w_space else (0.25, 0.5, 1.0, 1.5, 2.0)
        seed, values = q.seed("seed", 0), q.numbers("values", default, low, high, 12)
        settings = look(q, pipe)
        urls = await jobs.run(lambda: rendering.data_urls(rendering.truncation_sweep(pipe, seed, values, settings)))
        return _json({"model": model.name, "version": model.version, "values": values, "frames": urls})

    async def points_png(request: Request) -> Response:
        model, pipe = served(request)
        q = query(request, "n", "seed")
        if pipe.spec.kind != "points":
            raise BadRequest("this model makes images; points.png is for 2-D models")
        n, seed = q.integer("n", 1024, 1, limits.max_points), q.seed("seed", 0)
        data = await jobs.run(lambda: rendering.png_bytes(rendering.points_picture(pipe, n, seed)))
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def lab_gif(request: Request) -> Response:
        query(request)
        model = registry.get(request.path_params["model"])
        gif = model.source.lab_animation()
        if gif is None:
            raise HTTPException(404, f"{model.name} has no lab animation (only 2-D runs write RUN/lab.gif)")
        return FileResponse(gif, media_type="image/gif", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page), Route("/static/{name}", static_file), Route("/api/models", models),
        Route("/api/models/{model}", model_info), Route("/api/models/{model}/grid", grid),
        Route("/api/models/{model}/image.png", image_png), Route("/api/models/{model}/walk", walk),
        Route("/api/models/{model}/style-mix", style_mix), Route("/api/models/{model}/style-mix.png", style_mix_png),
        Route("/api/models/{model}/class-mix", class_mix), Route("/api/models/{model}/truncation-sweep", sweep),
        Route("/api/models/{model}/points.png", points_png), Route("/api/models/{model}/lab.gif", lab_gif),
    ]
    handlers = {GancliError: _refused, HTTPException: _http_error, Exception: _internal_error}
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
    app.state.registry, app.state.jobs = registry, jobs
    return app


def _truncation_part(pipe, look: Look) -> Optional[str]:
    if look.truncation is None:
        return None
    return f"psi{look.truncation:g}" if pipe.w_space else f"trunc{look.truncation:g}"


def _json(body) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _png(data: bytes, filename: str) -> Response:
    return Response(data, media_type="image/png",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _status(exc: GancliError) -> int:
    if isinstance(exc, UnknownModel):
        return 404
    if isinstance(exc, NotReady):
        return 409
    if isinstance(exc, Busy):
        return 503
    if isinstance(exc, PluginError):
        return 500  # the plugin failed: not the request's fault
    return 400


async def _refused(request: Request, exc: GancliError) -> Response:
    status = _status(exc)
    if status >= 500:
        LOG.error("%s %s: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    LOG.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)
