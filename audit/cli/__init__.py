"""The `audit` command line: thin commands over the library."""

import sys

# jsonschema, imported by GX and by nbformat, loads rfc3987-syntax's IRI grammar when that package is installed
# (jupyter-events' jsonschema[format-nongpl] pulls it in): 1.3-1.6 s of CPU in every `audit check` and `audit run`,
# for the "iri" formats that nothing here checks (neither GX nor nbformat asks jsonschema to check formats).
# The command line's processes go without it; a library user's process is left as it is.
sys.modules.setdefault("rfc3987_syntax", None)
