"""Store catalogs: the catalog file, its distributed client, the report data, the lookup and
its index.
"""
