"""Copies the checkout's read-only resources into the wheel as package data (``rag/_bundled``).

``prompts/``, the sample corpus in ``data/`` and ``eval/baseline.json`` live at the top of the checkout,
where people edit them; a wheel needs them inside the package so an installed ``rag`` works from any
folder (``rag.paths`` resolves which copy is used). Editable installs skip the copy: the checkout's files
are used directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLE = {"prompts": "prompts", "data": "data", "baseline.json": "eval/baseline.json",
          "relevance": "eval/relevance"}


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "rag" / "_bundled"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name, source in BUNDLE.items():
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("feedback_cases.md", ".*"))
            else:
                shutil.copy2(src, target / name)


setup(cmdclass={"build_py": BuildWithResources})
