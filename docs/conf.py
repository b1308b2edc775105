import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "wazo-ha"
author = "wazo-ha developers"
copyright = "2026, wazo-ha developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
