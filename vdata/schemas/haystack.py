"""Haystack benchmark rows: every column name and Arrow type of the synthetic needle-in-a-haystack
items, and of the Video-MME-style table the lmms-eval exporter writes. The one place for them.

An *item* is one question about one rendered haystack video. With circular evaluation each multiple
choice item is emitted once per rotation of its options (same video, same `item_id`, different
`question_id`). Times are float seconds from the start of the item's video.
"""
from __future__ import annotations

import pyarrow as pa

from vdata.schemas.records import ANSWER, ANSWER_INDEX, OPTIONS, QUESTION, TASK

ITEM_ID = "item_id"                      # one rendered video (and every rotation of its question)
QUESTION_ID = "question_id"              # unique per row: item_id, or item_id + "_r<rotation>"
ROTATION = "rotation"                    # circular eval: options rotated left by this many places
# TASK, QUESTION, OPTIONS, ANSWER, ANSWER_INDEX: shared meaning with the instruction samples (records.py)
NEEDLE_TYPE = "needle_type"              # the needle set's name (defaults to its type: image|text|clip|audio)
NEEDLES_PER_ITEM = "needles_per_item"    # the grid value this item was built for
DEPTH = "depth"                          # configured target depth 0..1, or null when placed uniformly
TARGET_DEPTH = "target_depth"            # realised depth of the asked-about needle: start / (length - duration)
HAYSTACK_ID = "haystack_id"              # the base haystack (sources + trims) the needles went into
HAYSTACK_LENGTH_S = "haystack_length_s"
VIDEO_PATH = "video_path"                # relative to the output folder: videos/<opaque media id>.mp4 (never the item id)
OPEN_QUESTION = "open_question"          # the open-ended form of the same question
OPEN_ANSWER = "open_answer"
ANSWER_LABELS = "answer_labels"          # the needle labels the answer is made of (ordering: in order)
ANSWER_START_S = "answer_start_s"        # localization: the interval scored by IoU (else null)
ANSWER_END_S = "answer_end_s"
PLACEMENTS = "placements"                # list<PLACEMENT_TYPE>, sorted by start
SEED = "seed"
CONFIG_HASH = "config_hash"
VERIFIED = "verified"                    # true: decode check passed; null: not rendered (manifest mode)
VERIFY_DETAIL = "verify_detail"          # JSON: per placement, the scores inside and just outside
VNBENCH_TYPE = "vnbench_type"            # VNBench's sub-task id (ret_insert1, ord_edit1, ...), null for other tasks

PLACEMENT_TYPE = pa.struct([
    pa.field("needle_id", pa.string()),  # content id of the needle file, or of the phrase text
    pa.field("kind", pa.string()),       # image | text | clip | audio
    pa.field("label", pa.string()),
    pa.field("role", pa.string()),       # target | other | anchor | payload
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("style", pa.string()),      # fullframe | overlay | audio
    pa.field("x", pa.int32()),           # on-screen box of the needle's pixels (null for audio)
    pa.field("y", pa.int32()),
    pa.field("w", pa.int32()),
    pa.field("h", pa.int32()),
])

ITEM_SCHEMA = pa.schema([
    pa.field(ITEM_ID, pa.string()),
    pa.field(QUESTION_ID, pa.string()),
    pa.field(ROTATION, pa.int32()),
    pa.field(TASK, pa.string()),
    pa.field(NEEDLE_TYPE, pa.string()),
    pa.field(NEEDLES_PER_ITEM, pa.int32()),
    pa.field(DEPTH, pa.float64()),
    pa.field(TARGET_DEPTH, pa.float64()),
    pa.field(HAYSTACK_ID, pa.string()),
    pa.field(HAYSTACK_LENGTH_S, pa.float64()),
    pa.field(VIDEO_PATH, pa.string()),
    pa.field(QUESTION, pa.string()),
    pa.field(OPTIONS, pa.list_(pa.string())),
    pa.field(ANSWER_INDEX, pa.int32()),
    pa.field(ANSWER, pa.string()),
    pa.field(OPEN_QUESTION, pa.string()),
    pa.field(OPEN_ANSWER, pa.string()),
    pa.field(ANSWER_LABELS, pa.list_(pa.string())),
    pa.field(ANSWER_START_S, pa.float64()),
    pa.field(ANSWER_END_S, pa.float64()),
    pa.field(PLACEMENTS, pa.list_(PLACEMENT_TYPE)),
    pa.field(SEED, pa.int64()),
    pa.field(CONFIG_HASH, pa.string()),
    pa.field(VERIFIED, pa.bool_()),
    pa.field(VERIFY_DETAIL, pa.string()),
    pa.field(VNBENCH_TYPE, pa.string()),
])

# --- the Video-MME-style table lmms-eval reads (rendered from ITEM_SCHEMA rows at export time) ---
MME_VIDEO_ID = "videoID"
MME_QUESTION_ID = "question_id"
MME_DURATION = "duration"                # a length bucket label such as "60s"
MME_DOMAIN = "domain"                    # the needle set
MME_SUB_CATEGORY = "sub_category"        # "<n> needles"
MME_TASK_TYPE = "task_type"              # the haystack task
MME_QUESTION = "question"
MME_OPTIONS = "options"                  # ["A. ...", "B. ...", ...]
MME_ANSWER = "answer"                    # a letter

LMMS_SCHEMA = pa.schema([
    pa.field(MME_VIDEO_ID, pa.string()),
    pa.field(MME_QUESTION_ID, pa.string()),
    pa.field(MME_DURATION, pa.string()),
    pa.field(MME_DOMAIN, pa.string()),
    pa.field(MME_SUB_CATEGORY, pa.string()),
    pa.field(MME_TASK_TYPE, pa.string()),
    pa.field(MME_QUESTION, pa.string()),
    pa.field(MME_OPTIONS, pa.list_(pa.string())),
    pa.field(MME_ANSWER, pa.string()),
    pa.field(ROTATION, pa.int32()),
    pa.field(ITEM_ID, pa.string()),      # the circular-eval group
    pa.field(HAYSTACK_LENGTH_S, pa.float64()),
    pa.field(OPEN_QUESTION, pa.string()),
    pa.field(OPEN_ANSWER, pa.string()),
    pa.field(ANSWER_LABELS, pa.list_(pa.string())),
    pa.field(ANSWER_START_S, pa.float64()),
    pa.field(ANSWER_END_S, pa.float64()),
    pa.field(VNBENCH_TYPE, pa.string()),
])

# VLMEvalKit TSV: its Video-MME reader's columns, in its order, plus ours after them.
TSV_COLUMNS = ("index", "video", "video_path", "duration", "domain", "candidates", "sub_category",
               "task_type", "question", "answer", ROTATION, ITEM_ID, HAYSTACK_LENGTH_S, VNBENCH_TYPE)

__all__ = [n for n in dir() if n.isupper()] + ["ANSWER", "ANSWER_INDEX", "OPTIONS", "QUESTION", "TASK"]
