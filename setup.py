"""Compile the report translations (``hubnb/locale/*/LC_MESSAGES/hubnb.po``) into ``.mo``
catalogs when the package is built; the rest of the configuration is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """``build_py`` that also writes each ``.po`` as a compiled ``.mo`` beside it."""

    def run(self):
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path("hubnb", "locale").glob("*/LC_MESSAGES/hubnb.po")):
            target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as source:
                catalog = read_po(source, locale=po.parts[-3])
            with open(target, "wb") as out:
                write_mo(out, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
