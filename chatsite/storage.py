"""Static files storage for production: hashed names, compressed, and ES module imports
rewritten to the hashed names too."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """`import … from "./sync.js"` in a collected module points at `sync.<hash>.js`, so a
    deploy never pairs a new entry module with a cached old dependency (Django 4.2+)."""

    support_js_module_import_aggregation = True
