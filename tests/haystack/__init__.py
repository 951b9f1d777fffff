# A package, so this folder's conftest is imported as `haystack.conftest` and never replaces the root
# `conftest` module that top-level test files import helpers from.
