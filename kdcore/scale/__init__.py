"""Past one machine: the teacher labels a large collection on Ray Data (label.py, the only module
of kd-lens that imports Ray, and only when it runs), into Parquet shards (store.py) that a run
is then built from; the collection is read slice by slice (collection.py)."""
