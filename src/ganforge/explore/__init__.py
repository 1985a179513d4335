"""``ganforge explore RUN``: a local web page on a run's generator: sample grids, paths, arithmetic, GANSpace
directions, feature maps switched off, and projection of real images. ``session`` does the work, ``server``
the HTTP (Starlette and uvicorn: ``pip install "ganforge[explore]"``), ``static/`` holds the page."""

from .session import Session

__all__ = ["Session"]
