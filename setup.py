"""Two build steps beyond pyproject.toml's configuration:

- the report notebooks live at the repository's top level (``notebooks/``, where analysts
  open them) and are mapped into the package as ``hubnb/notebooks/`` when it is built, so
  an installed hubnb carries them and ``hubnb run`` works from any folder;
- the report translations (``hubnb/locale/*/LC_MESSAGES/hubnb.po``) are compiled into
  ``.mo`` catalogs.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithNotebooksAndCatalogs(build_py):
    """``build_py`` that also copies ``notebooks/*.ipynb`` into the package and writes each
    ``.po`` as a compiled ``.mo`` beside it."""

    def run(self):
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        notebooks = Path(self.build_lib, "hubnb", "notebooks")
        notebooks.mkdir(parents=True, exist_ok=True)
        for nb in sorted(Path("notebooks").glob("*.ipynb")):
            shutil.copyfile(nb, notebooks / nb.name)
        for po in sorted(Path("hubnb", "locale").glob("*/LC_MESSAGES/hubnb.po")):
            target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as source:
                catalog = read_po(source, locale=po.parts[-3])
            with open(target, "wb") as out:
                write_mo(out, catalog)


setup(cmdclass={"build_py": BuildWithNotebooksAndCatalogs})
