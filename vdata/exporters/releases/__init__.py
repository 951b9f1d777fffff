"""Exporters that write the original release layouts of the field's datasets (one module each).

Every module writes what the release itself shipped: its file layout, field names and time form, so
that the release's own loader (or evaluation script) reads a vdata build as it read the original. Each
module's docstring says where the layout was confirmed; `tests/release_schemas/<name>.schema.json`
holds a JSON Schema per release written from the same source, and `tests/test_release_exports.py`
validates every export against it.

| format | files | times |
|---|---|---|
| vidchapters | `chapters_dvc_<train|val|test>.json` {video name: {duration, timestamps, sentences, path}} | seconds (floats) |
| mvbench | `json/<task>.json` [{video, question, candidates, answer, start?, end?}] + `data_list.json` | seconds |
| cg_bench | `cgbench.json` [{qid, video_uid, question, answer, choices, right_answer, clue_intervals, ...}] | seconds |
| timesuite | `<name>_timeit.json` [{video, QA: [{q, a}], start?, end?}] | "a - b seconds" |
| vtg_it | `<name>_vtg-it.json` [{video, QA: [{q, a}]}] | VTG digit tokens |
| lita | `<name>_lita.json` {key: {duration, QA: [{q, a}]}} | `<seconds>` (or `<tK>` with --time lita) |
| grounded_videollm | `<name>_grounded.json` [{question_id, video_file, video_id, conversation, dataset_name}] | `<seconds>` |
| vript | `vript_captions/<video_id>_caption.json` {meta, data} | - |
| panda70m | `<name>_panda70m.csv` videoID, url, timestamp, caption, matching_score | H:MM:SS.mmm |
| sharegpt4video | `<name>_sharegpt4video.jsonl` {video_id, zip_folder, captions: [{idx, content}]} | - |
| howtocaption | `<name>_howtocaption.json` (+ `.pickle`) {video_id: {start, end, text}} | whole seconds |
| koala36m | `<name>_koala36m.csv` videoID, url, timestamp, caption, 4 scores | H:MM:SS.mmm |
"""
