"""Many lines on one loaded session: `higgs say --input-file FILE --output-dir DIR`.

`rows.py` reads and checks the input (.txt, .csv/.tsv, .jsonl), `table.py` the
sheets it shares with `higgs project import`, and `render.py` plans, skips what
is already rendered, generates in batches and writes the manifest.
"""
