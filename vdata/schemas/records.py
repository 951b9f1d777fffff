"""Every column name and its Arrow type, in one place.

Rows come in levels: a *video* row (one per source file), a *clip* row (one per shot; it keeps the
video's columns), a *sample* row (one instruction sample; keeps its clip's columns). Stages declare the
columns they read and write by these constants; the runner builds each stage's output schema from them,
so the Parquet written at the end always has an explicit, predictable schema.
"""
from __future__ import annotations

import json

import pyarrow as pa

# --- video level: ingest ---
SOURCE_URI = "source_uri"          # where the video came from (path, glob match, manifest row, hf://...)
PATH = "path"                      # local path the workers read
SOURCE_META = "source_meta"        # JSON string: manifest / HF columns carried along (labels etc.)
# --- video level: probe ---
VIDEO_ID = "video_id"              # content hash (stable across paths and runs)
FILE_SIZE = "file_size"
DURATION_S = "duration_s"
FPS = "fps"                        # average frame rate
IS_VFR = "is_vfr"
NUM_FRAMES = "num_frames"
WIDTH = "width"                    # display width (after rotation)
HEIGHT = "height"
ROTATION = "rotation"
VIDEO_CODEC = "video_codec"
PIX_FMT = "pix_fmt"
BITRATE = "bitrate"
HAS_AUDIO = "has_audio"
HAS_VIDEO = "has_video"            # False for audio-only inputs (podcasts, lectures): no frames, no shots
AUDIO_CODEC = "audio_codec"
AUDIO_SAMPLE_RATE = "audio_sample_rate"
AUDIO_CHANNELS = "audio_channels"
# --- clip level: shots ---
CLIP_ID = "clip_id"
CLIP_INDEX = "clip_index"
START_S = "start_s"                # video-absolute seconds
END_S = "end_s"
START_FRAME = "start_frame"
END_FRAME = "end_frame"            # exclusive
CLIP_DURATION_S = "clip_duration_s"
CLIP_PATH = "clip_path"            # optional clip file written by the shots stage
SHOTS_IN_VIDEO = "shots_in_video"
# --- clip level: media damage (shots; null for a sound video) ---
MEDIA_DAMAGE = "media_damage"      # why only part of a damaged video was kept (on_corrupt: keep_prefix)
# --- clip level: quality scores (filters write scores first, then threshold) ---
Q_BRIGHTNESS = "q_brightness"      # mean luma 0..255
Q_SHARPNESS = "q_sharpness"        # variance of Laplacian at the analysis size
Q_MOTION = "q_motion"              # mean optical-flow magnitude, px at 160 wide per frame (per 1/30 s above 30 fps)
Q_DUP_RATIO = "q_dup_ratio"        # share of consecutive sampled frames that are near-duplicates
Q_TEXT_AREA = "q_text_area"        # share of frame area covered by OCR text boxes
Q_BORDER = "q_border"              # share of frame area that is letterbox/pillarbox
Q_MIN_SIDE = "q_min_side"
Q_ASPECT = "q_aspect"
Q_SUITABILITY = "q_suitability"    # weighted combined score 0..1
# --- clip level: frames ---
FRAMES = "frames"                  # list<struct<timestamp_s, jpeg>>
FRAME_SAMPLING = "frame_sampling"  # how they were chosen, e.g. "uniform:16"
FRAME_TIMESTAMP_S = "timestamp_s"  # field inside FRAMES items (video-absolute seconds)
FRAME_JPEG = "jpeg"
# --- clip level: speech (ASR once per video, attached to each clip; times video-absolute + clip-relative) ---
TRANSCRIPT_TEXT = "transcript_text"            # text of the segments overlapping the clip
TRANSCRIPT_LANGUAGE = "transcript_language"
TRANSCRIPT_SEGMENTS = "transcript_segments"    # list<SEGMENT_TYPE>
ASR_MODEL = "asr_model"
# --- clip level: captions (teacher VLMs) ---
CAPTION = "caption"                            # the selected / final caption
CAPTION_STRATEGY = "caption_strategy"          # multi_frame | differential | dense | multi_teacher
CAPTION_TEACHER = "caption_teacher"            # teacher name from config
CAPTION_MODEL = "caption_model"
CAPTION_PROMPT_VERSION = "caption_prompt_version"
CAPTION_FRAME_TIMESTAMPS = "caption_frame_timestamps"
CAPTION_STEPS = "caption_steps"                # differential: list<struct<timestamp_s, text>> in order
CAPTION_CANDIDATES = "caption_candidates"      # multi-teacher: every candidate, kept
CAPTION_SELECTION_SCORE = "caption_selection_score"
DENSE_EVENTS = "dense_events"                  # list<struct<start_s, end_s, description>> video-absolute
SHOT_TYPE = "shot_type"
CAMERA_MOVEMENT = "camera_movement"
DENSE_TIMESTAMPS_REPAIRED = "dense_timestamps_repaired"   # model timestamps clamped into the clip
DENSE_EVENTS_DROPPED = "dense_events_dropped"             # events dropped: too far outside, end < start, too short or repeated
# --- video level, denormalised onto each clip row: clip captions merged hierarchically (video_caption stage) ---
VIDEO_CAPTION = "video_caption"                # one description of the whole video, in time order
VIDEO_CAPTION_TEACHER = "video_caption_teacher"
VIDEO_CAPTION_MODEL = "video_caption_model"
VIDEO_CAPTION_PROMPT_VERSION = "video_caption_prompt_version"
VIDEO_CAPTION_CLIPS = "video_caption_clips"    # clip ids whose captions were merged, in time order
VIDEO_CAPTION_LEVELS = "video_caption_levels"  # merge levels: 0 = one clip copied, 1 = one merge, 2+ = hierarchical
# --- video level, denormalised onto each clip row: cross-clip entities (entities stage) ---
ENTITIES = "entities"                          # list<ENTITY_TYPE>: one consistent name per character/object of the video
CAPTION_RENAMED = "caption_renamed"            # the clip caption with each entity mention replaced by its name
# --- sample level: instruction samples (one row per sample; keeps its clip's columns) ---
SAMPLE_ID = "sample_id"
TASK = "task"                                  # caption | open_qa | mcq | cot | grounding | dense_caption | chapter
QUESTION_TYPE = "question_type"                # description, temporal, causal, counting, attribute, ...
QUESTION = "question"
ANSWER = "answer"                              # open-ended answer (for MCQ: the correct option's text)
OPTIONS = "options"                            # MCQ option texts, no letters
ANSWER_INDEX = "answer_index"                  # MCQ: index of the correct option
RATIONALE = "rationale"                        # chain of thought
RATIONALE_STEPS = "rationale_steps"            # list<struct<text, evidence_timestamps_s>>
ANSWER_SPANS = "answer_spans"                  # grounding: list<struct<start_s, end_s>> video-absolute
EVIDENCE = "evidence"                          # struct: captions, frame timestamps, transcript spans used
SAMPLE_TEACHER = "sample_teacher"
SAMPLE_MODEL = "sample_model"
SAMPLE_PROMPT_VERSION = "sample_prompt_version"
# --- sample level: verification scores (filters write scores, then threshold) ---
V_CLAIMS = "v_claims"                          # list<struct<claim, supported, note, verdict>>
V_SUPPORTED_RATIO = "v_supported_ratio"
V_BLIND_CORRECT = "v_blind_correct"            # share of blind (text-only) attempts that answered correctly
V_TIMESTAMPS_VALID = "v_timestamps_valid"
V_DUPLICATE_OF = "v_duplicate_of"
V_LABEL_CONTAINED = "v_label_contained"
# --- in-flight reject marker (never written to the dataset; see REJECT_SCHEMA) ---
REJECT_STAGE = "_reject_stage"
REJECT_REASON = "_reject_reason"
REJECT_MESSAGE = "_reject_message"
REJECT_DETAIL = "_reject_detail"
REJECT_COLUMNS = (REJECT_STAGE, REJECT_REASON, REJECT_MESSAGE, REJECT_DETAIL)
# A key of a reject's detail: true when the reject came of a teacher failure that may pass on its own
# (a timeout, a lost connection, 429, 5xx). A resumed build redoes that reject's video.
RETRY_ON_RESUME = "retry_on_resume"
# Each input video enters with mass 1.0; a stage splits a row's mass evenly over the rows it makes of
# it (clips, samples, or one reject). The sink records the mass it wrote per video, so a video is
# complete exactly when its written mass sums to 1 — the basis of resume with exactly-once output.
MASS = "_mass"
INTERNAL_COLUMNS = (*REJECT_COLUMNS, MASS)
# The URL of a remote video, beside the local copy a stage is given in its `path` (pipelines/execution.py):
# what the stage needs the original place for (the annotations stage's sidecars); never leaves the stage.
REMOTE_PATH = "_remote_path"

FRAME_TYPE = pa.struct([pa.field(FRAME_TIMESTAMP_S, pa.float64()), pa.field(FRAME_JPEG, pa.binary())])
WORD_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                       pa.field("clip_start_s", pa.float64()), pa.field("clip_end_s", pa.float64()),
                       pa.field("word", pa.string()), pa.field("probability", pa.float32())])
SEGMENT_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                          pa.field("clip_start_s", pa.float64()), pa.field("clip_end_s", pa.float64()),
                          pa.field("text", pa.string()), pa.field("words", pa.list_(WORD_TYPE)),
                          pa.field("language", pa.string())])   # the language the segment was decoded in
SPAN_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64())])
EVENT_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                        pa.field("description", pa.string())])
STEP_TYPE = pa.struct([pa.field("timestamp_s", pa.float64()), pa.field("text", pa.string())])
CANDIDATE_TYPE = pa.struct([pa.field("teacher", pa.string()), pa.field("model", pa.string()),
                            pa.field("text", pa.string()), pa.field("score", pa.float64())])
RATIONALE_STEP_TYPE = pa.struct([pa.field("text", pa.string()), pa.field("evidence_timestamps_s", pa.list_(pa.float64()))])
EVIDENCE_TYPE = pa.struct([
    pa.field("captions", pa.list_(pa.string())),
    pa.field("frame_timestamps_s", pa.list_(pa.float64())),
    pa.field("transcript_spans", pa.list_(pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                                                     pa.field("text", pa.string())]))),
])
CLAIM_TYPE = pa.struct([pa.field("claim", pa.string()), pa.field("supported", pa.bool_()), pa.field("note", pa.string()),
                        pa.field("verdict", pa.string())])   # supported | refuted | unsupported

ENTITY_EVIDENCE_TYPE = pa.struct([pa.field("clip_id", pa.string()), pa.field("source", pa.string()),   # caption | transcript
                                  pa.field("text", pa.string())])
ENTITY_TYPE = pa.struct([pa.field("name", pa.string()), pa.field("kind", pa.string()),   # person | animal | object
                         pa.field("aliases", pa.list_(pa.string())), pa.field("clip_ids", pa.list_(pa.string())),
                         pa.field("evidence", pa.list_(ENTITY_EVIDENCE_TYPE))])

FIELD_TYPES: dict[str, pa.DataType] = {
    SOURCE_URI: pa.string(), PATH: pa.string(), SOURCE_META: pa.string(),
    VIDEO_ID: pa.string(), FILE_SIZE: pa.int64(), DURATION_S: pa.float64(), FPS: pa.float64(),
    IS_VFR: pa.bool_(), NUM_FRAMES: pa.int64(), WIDTH: pa.int32(), HEIGHT: pa.int32(),
    ROTATION: pa.int32(), VIDEO_CODEC: pa.string(), PIX_FMT: pa.string(), BITRATE: pa.int64(),
    HAS_AUDIO: pa.bool_(), HAS_VIDEO: pa.bool_(), AUDIO_CODEC: pa.string(), AUDIO_SAMPLE_RATE: pa.int32(),
    AUDIO_CHANNELS: pa.int32(),
    CLIP_ID: pa.string(), CLIP_INDEX: pa.int32(), START_S: pa.float64(), END_S: pa.float64(),
    START_FRAME: pa.int64(), END_FRAME: pa.int64(), CLIP_DURATION_S: pa.float64(),
    CLIP_PATH: pa.string(), SHOTS_IN_VIDEO: pa.int32(), MEDIA_DAMAGE: pa.string(),
    Q_BRIGHTNESS: pa.float32(), Q_SHARPNESS: pa.float32(), Q_MOTION: pa.float32(),
    Q_DUP_RATIO: pa.float32(), Q_TEXT_AREA: pa.float32(), Q_BORDER: pa.float32(),
    Q_MIN_SIDE: pa.int32(), Q_ASPECT: pa.float32(), Q_SUITABILITY: pa.float32(),
    FRAMES: pa.list_(FRAME_TYPE), FRAME_SAMPLING: pa.string(),
    TRANSCRIPT_TEXT: pa.string(), TRANSCRIPT_LANGUAGE: pa.string(), TRANSCRIPT_SEGMENTS: pa.list_(SEGMENT_TYPE),
    ASR_MODEL: pa.string(),
    CAPTION: pa.string(), CAPTION_STRATEGY: pa.string(), CAPTION_TEACHER: pa.string(), CAPTION_MODEL: pa.string(),
    CAPTION_PROMPT_VERSION: pa.string(), CAPTION_FRAME_TIMESTAMPS: pa.list_(pa.float64()),
    CAPTION_STEPS: pa.list_(STEP_TYPE), CAPTION_CANDIDATES: pa.list_(CANDIDATE_TYPE),
    CAPTION_SELECTION_SCORE: pa.float64(), DENSE_EVENTS: pa.list_(EVENT_TYPE), SHOT_TYPE: pa.string(),
    CAMERA_MOVEMENT: pa.string(), DENSE_TIMESTAMPS_REPAIRED: pa.int32(), DENSE_EVENTS_DROPPED: pa.int32(),
    VIDEO_CAPTION: pa.string(), VIDEO_CAPTION_TEACHER: pa.string(), VIDEO_CAPTION_MODEL: pa.string(),
    VIDEO_CAPTION_PROMPT_VERSION: pa.string(), VIDEO_CAPTION_CLIPS: pa.list_(pa.string()),
    VIDEO_CAPTION_LEVELS: pa.int32(), ENTITIES: pa.list_(ENTITY_TYPE), CAPTION_RENAMED: pa.string(),
    SAMPLE_ID: pa.string(), TASK: pa.string(), QUESTION_TYPE: pa.string(), QUESTION: pa.string(),
    ANSWER: pa.string(), OPTIONS: pa.list_(pa.string()), ANSWER_INDEX: pa.int32(), RATIONALE: pa.string(),
    RATIONALE_STEPS: pa.list_(RATIONALE_STEP_TYPE), ANSWER_SPANS: pa.list_(SPAN_TYPE), EVIDENCE: EVIDENCE_TYPE,
    SAMPLE_TEACHER: pa.string(), SAMPLE_MODEL: pa.string(), SAMPLE_PROMPT_VERSION: pa.string(),
    V_CLAIMS: pa.list_(CLAIM_TYPE), V_SUPPORTED_RATIO: pa.float32(), V_BLIND_CORRECT: pa.float32(),
    V_TIMESTAMPS_VALID: pa.bool_(), V_DUPLICATE_OF: pa.string(), V_LABEL_CONTAINED: pa.bool_(),
    REJECT_STAGE: pa.string(), REJECT_REASON: pa.string(), REJECT_MESSAGE: pa.string(),
    REJECT_DETAIL: pa.string(), MASS: pa.float64(),
}

INGEST_COLUMNS = (SOURCE_URI, PATH, SOURCE_META)
PROBE_COLUMNS = (VIDEO_ID, FILE_SIZE, DURATION_S, FPS, IS_VFR, NUM_FRAMES, WIDTH, HEIGHT, ROTATION,
                 VIDEO_CODEC, PIX_FMT, BITRATE, HAS_AUDIO, AUDIO_CODEC, AUDIO_SAMPLE_RATE,
                 AUDIO_CHANNELS, HAS_VIDEO)
CLIP_COLUMNS = (CLIP_ID, CLIP_INDEX, START_S, END_S, START_FRAME, END_FRAME, CLIP_DURATION_S,
                CLIP_PATH, SHOTS_IN_VIDEO, MEDIA_DAMAGE)
QUALITY_COLUMNS = (Q_BRIGHTNESS, Q_SHARPNESS, Q_MOTION, Q_DUP_RATIO, Q_TEXT_AREA, Q_BORDER,
                   Q_MIN_SIDE, Q_ASPECT, Q_SUITABILITY)
FRAME_COLUMNS = (FRAMES, FRAME_SAMPLING)
TRANSCRIPT_COLUMNS = (TRANSCRIPT_TEXT, TRANSCRIPT_LANGUAGE, TRANSCRIPT_SEGMENTS, ASR_MODEL)
CAPTION_COLUMNS = (CAPTION, CAPTION_STRATEGY, CAPTION_TEACHER, CAPTION_MODEL, CAPTION_PROMPT_VERSION,
                   CAPTION_FRAME_TIMESTAMPS, CAPTION_STEPS, CAPTION_CANDIDATES, CAPTION_SELECTION_SCORE,
                   DENSE_EVENTS, SHOT_TYPE, CAMERA_MOVEMENT, DENSE_TIMESTAMPS_REPAIRED, DENSE_EVENTS_DROPPED)
VIDEO_CAPTION_COLUMNS = (VIDEO_CAPTION, VIDEO_CAPTION_TEACHER, VIDEO_CAPTION_MODEL, VIDEO_CAPTION_PROMPT_VERSION,
                         VIDEO_CAPTION_CLIPS, VIDEO_CAPTION_LEVELS)
ENTITY_COLUMNS = (ENTITIES, CAPTION_RENAMED)
SAMPLE_COLUMNS = (SAMPLE_ID, TASK, QUESTION_TYPE, QUESTION, ANSWER, OPTIONS, ANSWER_INDEX, RATIONALE,
                  RATIONALE_STEPS, ANSWER_SPANS, EVIDENCE, SAMPLE_TEACHER, SAMPLE_MODEL, SAMPLE_PROMPT_VERSION)
VERIFY_COLUMNS = (V_CLAIMS, V_SUPPORTED_RATIO, V_BLIND_CORRECT, V_TIMESTAMPS_VALID, V_DUPLICATE_OF, V_LABEL_CONTAINED)

# --- sample level: claim verdicts and well-formedness (verify_claims, wellformed) ---
V_STATUS = "v_status"                          # verified | unverified (no evidence but the sample itself) | not_checked
V_REFUTED_CLAIMS = "v_refuted_claims"          # claims the evidence contradicts (≠ merely unsupported)
V_WELLFORMED_ISSUES = "v_wellformed_issues"    # reason codes the wellformed stage found (empty: well formed)
V_LANGUAGE_SCORE = "v_language_score"          # share of the text's function words that are the configured language's
V_PROMPT_OVERLAP = "v_prompt_overlap"          # share of the text's word 3-grams found in a shipped prompt template
STATUS_VERIFIED, STATUS_UNVERIFIED, STATUS_NOT_CHECKED = "verified", "unverified", "not_checked"
FIELD_TYPES.update({V_STATUS: pa.string(), V_REFUTED_CLAIMS: pa.int32(), V_WELLFORMED_ISSUES: pa.list_(pa.string()),
                    V_LANGUAGE_SCORE: pa.float32(), V_PROMPT_OVERLAP: pa.float32()})
WELLFORMED_COLUMNS = (V_WELLFORMED_ISSUES, V_LANGUAGE_SCORE, V_PROMPT_OVERLAP)

# --- video level: annotations the input carries (annotations stage; validated, video-absolute seconds) ---
# Read from manifest / HF columns (source_meta) or sidecar files next to the video; every clip row keeps them.
ANNOTATIONS = "annotations"
ANNOTATION_ISSUES = "annotation_issues"        # items dropped as invalid (each also a reject row with its reason)
ANNOTATION_REPAIRS = "annotation_repairs"      # items kept after a repair: clamped into the video, overlap trimmed
CHAPTER_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                          pa.field("title", pa.string())])
TIMED_TEXT_TYPE = pa.struct([pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64()),
                             pa.field("text", pa.string())])
ANNOTATIONS_TYPE = pa.struct([
    pa.field("title", pa.string()),
    pa.field("description", pa.string()),
    pa.field("labels", pa.list_(pa.string())),
    pa.field("chapters", pa.list_(CHAPTER_TYPE)),        # ordered, non-overlapping, end = next start / video end
    pa.field("segments", pa.list_(TIMED_TEXT_TYPE)),     # dense captions / temporal segments (may overlap)
    pa.field("subtitles", pa.list_(TIMED_TEXT_TYPE)),    # SRT / WebVTT cues, ordered
    pa.field("transcript", pa.string()),                 # a given transcript (no times)
])
ANNOTATION_KINDS = ("title", "description", "labels", "chapters", "segments", "subtitles", "transcript")
# --- sample level: the scope a sample was generated at ---
SAMPLE_SCOPE = "sample_scope"                  # clip (default) | video: the sample's visual is the whole video
SCOPE_CLIP, SCOPE_VIDEO = "clip", "video"
FIELD_TYPES.update({ANNOTATIONS: ANNOTATIONS_TYPE, ANNOTATION_ISSUES: pa.int32(), ANNOTATION_REPAIRS: pa.int32(),
                    SAMPLE_SCOPE: pa.string()})
ANNOTATION_COLUMNS = (ANNOTATIONS, ANNOTATION_ISSUES, ANNOTATION_REPAIRS)

# --- clip level: structured captions (caption stage, `strategy: structured`; Koala-36M / Vript presets) ---
CAPTION_FIELDS = "caption_fields"              # JSON object string: field name -> text, in the schema's order
# --- sample level: refinement rounds (verify_claims `correct_rounds`, labels `rationalize`) ---
REFINE_ROUNDS = "refine_rounds"                # list<REFINE_ROUND_TYPE>: round 0 = the check as generated
REFINE_ROUND_TYPE = pa.struct([pa.field("round", pa.int32()), pa.field("stage", pa.string()),
                               pa.field("kind", pa.string()),          # check | correct | rationalize
                               pa.field("text", pa.string()),          # the answer this round judged
                               pa.field("supported_ratio", pa.float32()), pa.field("passed", pa.bool_())])
FIELD_TYPES.update({CAPTION_FIELDS: pa.string(), REFINE_ROUNDS: pa.list_(REFINE_ROUND_TYPE)})

# --- sample level: a score per answer span (generate `highlights`: VTG-IT / QVHighlights saliency) ---
ANSWER_SCORES = "answer_scores"                # list<float64>, one per `answer_spans` item; null for other tasks
FIELD_TYPES.update({ANSWER_SCORES: pa.list_(pa.float64())})
SAMPLE_COLUMNS = SAMPLE_COLUMNS + (ANSWER_SCORES,)
# --- sample level: forms of one item (generate: an MCQ and its open-ended twin, CG-Bench style) ---
SAMPLE_GROUP = "sample_group"                  # the MCQ form's sample id, on every form of one item; null: no twin
FIELD_TYPES.update({SAMPLE_GROUP: pa.string()})
SAMPLE_COLUMNS = (*SAMPLE_COLUMNS, SAMPLE_GROUP)

# --- video-scope rows and samples (generate `scope: video`) ---
# On video-scope rows and samples only: each clip's caption with its interval (the video row's clues C1…)
CLIP_CAPTIONS = "clip_captions"                # list<TIMED_TEXT_TYPE>, video-absolute, in time order
FIELD_TYPES.update({CLIP_CAPTIONS: pa.list_(TIMED_TEXT_TYPE)})

# --- sample level: single-frame answerability (single_frame stage) ---
V_SINGLE_FRAME_CORRECT = "v_single_frame_correct"   # share of one-frame attempts (vision teacher) answered right
V_SINGLE_FRAME_TIME_S = "v_single_frame_time_s"     # the time of that frame, video-absolute seconds
FIELD_TYPES.update({V_SINGLE_FRAME_CORRECT: pa.float32(), V_SINGLE_FRAME_TIME_S: pa.float64()})

# --- clip level: vision-text embeddings and curation scores (clip_embed, semdedup; thresholds re-applicable) ---
CLIP_EMBEDDING = "clip_embedding"              # list<float32>: unit mean of the clip's frame embeddings
CLIP_EMBED_MODEL = "clip_embed_model"          # the CLIP/SigLIP-family model that made it
Q_AESTHETIC = "q_aesthetic"                    # LAION-style aesthetic head, mean over the clip's frames
Q_TEXT_SIMILARITY = "q_text_similarity"        # frame-caption cosine, mean over frames; null without a caption
SEMANTIC_DUPLICATE_OF = "semantic_duplicate_of"   # semdedup: the kept clip id (level clip) or source_uri (level video)
Q_SEMANTIC_SIMILARITY = "q_semantic_similarity"   # semdedup: cosine to the nearest item kept before it; null: first
FIELD_TYPES.update({CLIP_EMBEDDING: pa.list_(pa.float32()), CLIP_EMBED_MODEL: pa.string(), Q_AESTHETIC: pa.float32(),
                    Q_TEXT_SIMILARITY: pa.float32(), SEMANTIC_DUPLICATE_OF: pa.string(),
                    Q_SEMANTIC_SIMILARITY: pa.float32()})
Q_WATERMARK = "q_watermark"                    # watermark probability (a head on the embeddings), mean over frames
FIELD_TYPES.update({Q_WATERMARK: pa.float32()})
CLIP_EMBED_COLUMNS = (CLIP_EMBEDDING, CLIP_EMBED_MODEL, Q_AESTHETIC, Q_TEXT_SIMILARITY, Q_WATERMARK)
Q_NSFW = "q_nsfw"                              # nsfw: highest detection score of the configured classes, worst frame
NSFW_LABELS = "nsfw_labels"                    # nsfw: the configured classes detected in any frame
FIELD_TYPES.update({Q_NSFW: pa.float32(), NSFW_LABELS: pa.list_(pa.string())})

# --- sample level: preference pairs (generate `preference_pairs`; VideoSAVi-style DPO data) ---
CHOSEN = "chosen"                              # the best-ranked candidate answer (also in `answer`)
REJECTED = "rejected"                          # the worst-ranked candidate whose text differs from `chosen`
PREFERENCE_CANDIDATES = "preference_candidates"   # every candidate with each score that ranked it
PREFERENCE_CANDIDATE_TYPE = pa.struct([
    pa.field("teacher", pa.string()), pa.field("model", pa.string()), pa.field("temperature", pa.float64()),
    pa.field("text", pa.string()), pa.field("judge_score", pa.float64()),     # judge teacher, 0..1
    pa.field("self_score", pa.float64()),                                    # the writer's self-critique, 0..1
    pa.field("vision_text_score", pa.float64()),                             # vision–text scorer, 0..1 (hook)
    pa.field("score", pa.float64()),                                         # the weighted mean that ranked it
    pa.field("rank", pa.int32()), pa.field("error", pa.string())])           # rank 0 = chosen; error: no text
# --- sample level: streaming timed dialogue (generate `streaming_dialogue`; VideoLLM-online LIVE) ---
TURNS = "turns"                                # list<struct<role, content, time_s>>, video-absolute, in time order
TURN_TYPE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string()),
                       pa.field("time_s", pa.float64())])
FIELD_TYPES.update({CHOSEN: pa.string(), REJECTED: pa.string(),
                    PREFERENCE_CANDIDATES: pa.list_(PREFERENCE_CANDIDATE_TYPE), TURNS: pa.list_(TURN_TYPE)})
SAMPLE_COLUMNS = (*SAMPLE_COLUMNS, CHOSEN, REJECTED, PREFERENCE_CANDIDATES, TURNS)

# --- the clips table of a sample build: each clip's frames stored once, in `<out>/clips/` ---
# A sample row refers to its clip by CLIP_ID; the sink moves these columns off the sample rows into one
# row per clip (same part names and splits as the samples), and every reader of frames joins them back
# by CLIP_ID (`vdata.exporters.source.join_clip_frames`). A clip-level build's rows are the clips already.
CLIPS_TABLE = "clips"                          # the folder (and `datasets` config) of the clips table
CLIPS_TABLE_PAYLOAD = FRAME_COLUMNS            # what moves off the sample rows
CLIPS_TABLE_COLUMNS = (SOURCE_URI, VIDEO_ID, CLIP_ID, START_S, END_S, *CLIPS_TABLE_PAYLOAD)

# Canonical column order: a schema always lists its columns in this order.
_ORDER = {name: i for i, name in enumerate(FIELD_TYPES)}


def register_columns(types: dict[str, pa.DataType]) -> None:
    """Add columns owned by a later floor (captions, samples, ...) to the one registry.

    Registering the same name twice with a different type is a programming error.
    """
    for name, typ in types.items():
        old = FIELD_TYPES.get(name)
        if old is not None and old != typ:
            raise ValueError(f"column {name!r} already registered as {old}, not {typ}")
        if old is None:
            FIELD_TYPES[name] = typ
            _ORDER[name] = len(_ORDER)


def schema_for(columns) -> pa.Schema:
    """The Arrow schema of a set of registered columns, in canonical order."""
    unknown = [c for c in columns if c not in FIELD_TYPES]
    if unknown:
        raise KeyError(f"unregistered columns: {unknown}")
    ordered = sorted(set(columns), key=_ORDER.__getitem__)
    return pa.schema([pa.field(c, FIELD_TYPES[c]) for c in ordered])


def data_schema(columns) -> pa.Schema:
    """Schema of rows written to the dataset: the in-flight internal columns removed."""
    return schema_for([c for c in columns if c not in INTERNAL_COLUMNS])


# --- the rejects table: one row per dropped video / clip / sample, whatever stage dropped it ---
REJECT_SCHEMA = pa.schema([
    pa.field("stage", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("message", pa.string()),
    pa.field("detail", pa.string()),        # JSON: scores, thresholds, raw replies
    pa.field(SOURCE_URI, pa.string()),
    pa.field(VIDEO_ID, pa.string()),
    pa.field(CLIP_ID, pa.string()),
    pa.field(SAMPLE_ID, pa.string()),
    # the sample's task where a sample (or one task's generation) was dropped; null for a video or clip
    pa.field(TASK, pa.string()),
    # the dropped clip's (or sample's) span in the video, seconds; null for a whole video. A clip id's frame
    # numbers are no times in a variable-rate video
    pa.field(START_S, pa.float64()),
    pa.field(END_S, pa.float64()),
])


def source_meta(row: dict) -> dict:
    """A row's `source_meta` (the input's own fields: manifest or HF dataset columns) as a mapping: the JSON
    text ingest stores, or a mapping already; {} when absent, blank or unreadable."""
    raw = row.get(SOURCE_META)
    if isinstance(raw, dict):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


# a clip within this of both ends of its video is the whole video (a shot list's first and last frames)
WHOLE_VIDEO_TOLERANCE_S = 0.5


def source_caption(row: dict, key: str | None) -> str | None:
    """The input's own caption (`source_meta[key]`) where it describes this row: a manifest's or a clip
    dataset's caption describes the whole video it came with, so a shot cut from that video (a 3-s shot of
    a multi-shot MSR-VTT clip) has none; a row that spans the video has it (outside check h24 F9)."""
    value = source_meta(row).get(key) if key else None
    if not isinstance(value, str) or not value.strip():
        return None
    start, end, duration = row.get(START_S), row.get(END_S), row.get(DURATION_S)
    if start is not None and start > WHOLE_VIDEO_TOLERANCE_S:
        return None
    if end is not None and duration is not None and end < duration - WHOLE_VIDEO_TOLERANCE_S:
        return None
    return value
