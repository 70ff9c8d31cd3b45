"""The editing methods, one subpackage or module per paper.

Each is re-exported at the top level (``jaxedit.resefa``, ``jaxedit.sefa``, ``jaxedit.panda``,
``jaxedit.eis``, ...); this package face imports nothing itself, so that importing one method
never loads the others.
"""
