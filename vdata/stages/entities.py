"""entities: one consistent name per repeated character or object across the clips of a video (MR. Video's reduce).

Clip captions are written clip by clip, so the same man is "a man in a red shirt" in one clip and "the man"
in the next, and a reader (or a student model) cannot tell that they are one person. This stage reads all
clips of a video together and, without a teacher and deterministically:

1. extracts entity mentions from each caption: a determiner, known modifiers, a head noun, and an
   appearance phrase ("a man in a red shirt", "the woman wearing a blue hat", "a dog with a black collar");
2. extracts spoken names from each clip's transcript: capitalised words that are not common sentence
   openers (see `spoken_names` for the rule at the start of a sentence);
3. clusters mentions across clips: same head noun and same appearance words; a bare mention ("the man")
   joins its head's only described cluster, else the one described in its own clip, else a bare cluster;
4. names each cluster: a person cluster takes the spoken name most often co-occurring in its clips (each
   name used once; only a name said of someone there, never one only talked about as absent, one the speech
   gives the other gender, or one two people in the clip could equally be), otherwise the most described mention with "the" (`naming: descriptive`) or
   "Person 1" / "Dog 1" (`naming: numbered`);
5. rewrites each caption with every mention of a kept cluster replaced by the cluster's name.

A cluster is kept when it spans at least `min_clips` clips or carries a spoken name. Every clip row of the
video gets the entity table (`entities`: name, kind, aliases, clip ids, evidence) and its `caption_renamed`
(its caption unchanged when nothing was renamed; null when it has no caption); `apply_to_caption` writes
it over `caption` too, for the stages after this one. The stage declares
`group_by = SOURCE_URI` (like `video_caption`), so the runner hands it all clips of a video in one batch.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from vdata.schemas import records as R

from .base import Resources, Stage, StageConfig

DETERMINERS = {"a", "an", "the"}
PERSON_HEADS = {"man", "woman", "boy", "girl", "person", "child", "kid", "lady", "guy", "gentleman", "baby",
                "player", "chef", "cook", "worker", "teacher", "student", "driver", "rider", "host", "presenter",
                "speaker", "narrator", "customer", "officer", "doctor", "nurse", "farmer", "runner", "dancer",
                "singer", "musician", "toddler", "teenager", "adult", "mother", "father", "grandmother"}
ANIMAL_HEADS = {"dog", "cat", "horse", "bird", "cow", "sheep", "goat", "pig", "duck", "chicken", "puppy",
                "kitten", "rabbit", "fish", "bear", "deer", "monkey", "parrot", "lion", "tiger", "elephant"}
# Modifiers that describe appearance (kept in the cluster key) and may stand before the head noun.
MODIFIERS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey", "gray",
             "dark", "light", "bright", "small", "large", "big", "little", "tiny", "huge", "tall", "short", "young",
             "old", "elderly", "blond", "blonde", "bald", "bearded", "fluffy", "striped", "spotted", "long",
             "curly", "wooden", "metal", "plastic", "golden", "silver", "smiling", "older", "younger"}
CLOTHING = {"shirt", "t-shirt", "jacket", "hat", "cap", "dress", "coat", "suit", "glasses", "sunglasses", "sweater",
            "hoodie", "uniform", "apron", "helmet", "scarf", "jeans", "skirt", "vest", "collar", "jersey", "top",
            "trousers", "pants", "shorts", "hair", "beard", "boots", "gloves", "mask", "tie", "harness"}
APPEARANCE_LINKS = {"in", "wearing", "with"}
# Heads that name the medium or the text itself, not a thing in it ("the clip", "the speech", "the scene").
META_HEADS = {"clip", "clips", "video", "videos", "speech", "scene", "scenes", "frame", "frames", "footage",
              "transcript", "audio", "sound", "narration", "narrator", "sentence", "text", "caption", "description",
              "context", "setting", "shot", "image", "picture", "moment", "beginning", "end", "start", "middle",
              "time", "way", "part", "rest", "same", "first", "last", "other", "viewer", "audience", "story",
              "people", "things", "thing", "main", "character", "characters"}
# Words that end a mention: function words and common caption verbs that follow a bare head.
STOP_WORDS = {"and", "or", "in", "on", "at", "to", "for", "with", "from", "by", "into", "onto", "is", "are", "was",
              "were", "that", "which", "who", "while", "as", "of", "then", "but", "near", "next", "behind",
              "wearing", "holding", "sitting", "standing", "walking", "running", "appears", "again", "there"}
# Capitalised words that open sentences or address people without being names (after answer_first's list).
NOT_NAMES = {"The", "A", "An", "This", "That", "These", "Those", "There", "It", "He", "She", "They", "We", "I",
             "Her", "His", "Their", "Our", "My", "Your", "Its", "And", "But", "So", "Then", "Now", "Today", "Every",
             "Each", "After", "Before", "In", "On", "At", "Yes", "No", "Oh", "Ok", "Okay", "Well", "Hello", "Hi",
             "Here", "Look", "Let", "Let's", "Come", "Go", "What", "Who", "Why", "How", "When", "Where", "Is",
             "Are", "Do", "Does", "Did", "Not", "Please", "Thank", "Thanks", "Good", "Great", "First", "Next",
             "Finally", "Also", "Just", "If", "You", "Me", "Him", "Them", "Us", "Mr", "Mrs", "Ms", "Dr",
             "Captain", "Doctor", "Mister", "Miss", "Professor", "Uncle", "Aunt", "Monday", "Tuesday",
             "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "English", "Say", "Watch", "See", "Take",
             "Put", "Make", "Get", "Give", "Open", "Turn", "Keep", "Try", "Add", "Use", "Wait", "Stop", "Listen"}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|[.!?]")
# A name right after one of these is someone talked about, not the one on screen ("waiting for Ben",
# "talk to Ana"); "hello from Ben" is the speaker signing, and stays a use of the name.
ABOUT_PREPOSITIONS = {"for", "to", "about", "with", "at", "of", "without", "than", "from", "by", "on", "into",
                      "toward", "towards", "after", "behind", "like", "call", "ask", "tell", "text", "meet"}
GREETINGS = {"hello", "hi", "hey", "greetings", "love", "regards", "cheers", "bye"}
# ... and a name followed by one of these is said of someone away or of another time ("Ben said", "Ben is
# late", "Ben will come"); "Maria is kneading" (is + -ing) tells what is on screen now.
AWAY_VERBS = {"was", "were", "will", "would", "said", "told", "called", "texted", "phoned", "wrote", "sent",
              "isn't", "wasn't", "won't", "couldn't", "hasn't", "hadn't", "left", "had", "used", "promised"}
FEMALE_HEADS = {"woman", "girl", "lady", "mother", "grandmother", "actress", "waitress"}
MALE_HEADS = {"man", "boy", "guy", "gentleman", "father"}


class EntitiesConfig(StageConfig):
    min_clips: int = Field(2, ge=1, le=10000)     # a cluster without a spoken name is kept from this many clips
    naming: Literal["descriptive", "numbered"] = "descriptive"
    spoken_names: bool = True                     # a person cluster takes a name said in its clips' transcript
    # True: the renamed text also replaces `caption`, so later stages (video_caption, generate, verify_claims)
    # read the consistent names; the original mentions stay in `entities[].aliases` and `evidence`.
    apply_to_caption: bool = False


@dataclass(eq=False)   # compared by identity: one object per place in a caption
class Mention:
    clip_id: str
    start: int                 # character span in the caption
    end: int
    text: str
    head: str
    attrs: tuple[str, ...]     # appearance words, sorted
    order: int = 0             # position among the video's mentions (clips in time order)
    source: str = "caption"    # caption | transcript: only caption mentions are renamed
    named: str = ""            # the name the text gives it ("a woman named Maria")


@dataclass
class Cluster:
    head: str
    attrs: tuple[str, ...]
    mentions: list[Mention] = field(default_factory=list)
    name: str = ""

    @property
    def kind(self) -> str:
        return "person" if self.head in PERSON_HEADS else "animal" if self.head in ANIMAL_HEADS else "object"

    @property
    def clip_ids(self) -> list[str]:
        return list(dict.fromkeys(m.clip_id for m in self.mentions))


def caption_mentions(clip_id: str, caption: str, source: str = "caption") -> list[Mention]:
    """Entity mentions in one caption (or transcript): determiner, modifiers, head noun, optional appearance phrase."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(caption)]
    lower = [t[0].lower() for t in tokens]
    out, i = [], 0
    while i < len(tokens):
        if lower[i] not in DETERMINERS:
            i += 1
            continue
        j, mods = i + 1, []
        while j < len(tokens) and lower[j] in MODIFIERS and j + 1 < len(tokens) and lower[j + 1] not in STOP_WORDS:
            mods.append(lower[j])
            j += 1
        if j >= len(tokens) or not tokens[j][0][0].isalpha() or lower[j] in STOP_WORDS | DETERMINERS | MODIFIERS \
                or lower[j] in META_HEADS:
            i += 1
            continue
        head, end = lower[j], j
        attrs = list(mods)
        if head.endswith("'s") and lower[j + 1:j + 3] == ["name", "is"] and j + 3 < len(tokens) \
                and tokens[j + 3][0][0].isupper() and tokens[j + 3][0].isalpha() and tokens[j + 3][0] not in NOT_NAMES:
            # "the woman's name is Maria": the whole phrase is a mention of the woman, named Maria
            named = tokens[j + 3][0]
            start_char, end_char = tokens[i][1], tokens[j + 3][2]
            out.append(Mention(clip_id, start_char, end_char, caption[start_char:end_char], head[:-2],
                               tuple(sorted(set(attrs + [f"named {named}"]))), source=source, named=named))
            i = j + 4
            continue
        phrase = _appearance(lower, end + 1)
        if phrase:
            attrs += [w for w in lower[end + 2:phrase] if w not in DETERMINERS]
            end = phrase - 1
        named = ""
        if end + 2 < len(tokens) and lower[end + 1] in ("named", "called") and tokens[end + 2][0][0].isupper() \
                and tokens[end + 2][0].isalpha() and tokens[end + 2][0] not in NOT_NAMES:
            named, end = tokens[end + 2][0], end + 2
            attrs.append(f"named {named}")   # two mentions given one name are one entity
        start_char, end_char = tokens[i][1], tokens[end][2]
        out.append(Mention(clip_id, start_char, end_char, caption[start_char:end_char], head,
                           tuple(sorted(set(attrs))), source=source, named=named))
        i = end + 1
    return out


def _appearance(lower: list[str], k: int) -> int | None:
    """End index (exclusive) of an appearance phrase at k ("in a red shirt", "wearing glasses"), else None."""
    if k >= len(lower) or lower[k] not in APPEARANCE_LINKS:
        return None
    j = k + 1
    if j < len(lower) and lower[j] in DETERMINERS:
        j += 1
    mods = 0
    while j < len(lower) and lower[j] in MODIFIERS:
        mods, j = mods + 1, j + 1
    if j < len(lower) and lower[j] in CLOTHING:
        return j + 1
    if mods and j < len(lower) and lower[j].isalpha() and lower[j] not in STOP_WORDS | DETERMINERS:
        return j + 1   # "in a red car": described by a colour or size, not a location ("in the kitchen")
    return None


def spoken_names(transcripts: dict[str, str], tokens_of: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Names said in each clip's transcript, in order of first mention (see the module docstring, step 2).

    A capitalised word mid-sentence is a name. One that opens a sentence ("Maria bakes bread.") counts when
    a word follows it and the video's speech never uses it in lowercase (so "Look" in "Look at this, look!"
    does not); NOT_NAMES holds the usual openers and imperatives. `tokens_of`: the transcripts already
    `tokenized`."""
    tokens_of = tokens_of if tokens_of is not None else tokenized(transcripts)
    lowercase = {t for tokens in tokens_of.values() for t in tokens if t.islower()}
    mid, found = set(), {}
    for clip_id, tokens in tokens_of.items():
        found[clip_id] = []
        for k, tok in enumerate(tokens):
            if not tok[0].isupper() or tok in NOT_NAMES or len(tok) < 2 or not tok.isalpha():
                continue
            opens_sentence = k == 0 or tokens[k - 1] in ".!?"
            if not opens_sentence:
                mid.add(tok)
            elif tok.lower() in lowercase or k + 1 >= len(tokens) or tokens[k + 1] in ".!?":
                continue
            found[clip_id].append(tok)
    return {clip_id: list(dict.fromkeys(names)) for clip_id, names in found.items()}


def tokenized(transcripts: dict[str, str]) -> dict[str, list[str]]:
    """Each clip's transcript as words and sentence ends, read once for every rule below."""
    return {clip_id: _TOKEN.findall(text or "") for clip_id, text in transcripts.items()}


def present_names(tokens_of: dict[str, list[str]], names: dict[str, list[str]]) -> dict[str, list[str]]:
    """Of the names said in each clip, those said of someone there: at least one use that is not about an
    absent person (after a preposition, "waiting for Ben"; before a verb of report, absence or another time,
    "Ben said", "Ben is late", "Ben will"). Only such a use lets a person seen in the clip take the name."""
    out = {}
    for clip_id, said in names.items():
        tokens = tokens_of.get(clip_id) or []
        low = [t.lower() for t in tokens]
        kept = []
        for name in said:
            for k, tok in enumerate(tokens):
                if tok != name:
                    continue
                before = low[k - 1] if k else ""
                after, then = (low[k + 1] if k + 1 < len(low) else ""), (low[k + 2] if k + 2 < len(low) else "")
                about = before in ABOUT_PREPOSITIONS and not (before == "from" and k > 1 and low[k - 2] in GREETINGS)
                away = after in AWAY_VERBS or (after == "is" and not then.endswith("ing") and then not in ("here", "there"))
                if not (about or away):
                    kept.append(name)
                    break
        out[clip_id] = kept
    return out


def name_genders(tokens_of: dict[str, list[str]], names: dict[str, list[str]]) -> dict[str, str]:
    """name -> "female" / "male" where the speech refers back to it with she/her or he/him/his (the rest of
    its sentence, or the next sentence's opening pronoun), one way only; names with no such cue are left out."""
    cues: dict[str, set[str]] = {}
    for clip_id, said in names.items():
        tokens = tokens_of.get(clip_id) or []
        for k, tok in enumerate(tokens):
            if tok not in said:
                continue
            end = next((j for j in range(k + 1, len(tokens)) if tokens[j] in ".!?"), len(tokens))
            window = [t.lower() for t in tokens[k + 1:end]] + ([tokens[end + 1].lower()] if end + 1 < len(tokens) else [])
            for pronoun, gender in (("she", "female"), ("her", "female"), ("he", "male"), ("him", "male"),
                                    ("his", "male")):
                if pronoun in window:
                    cues.setdefault(tok, set()).add(gender)
    return {name: g.pop() for name, g in cues.items() if len(g) == 1}


def _gender_of(cluster: Cluster) -> str | None:
    return "female" if cluster.head in FEMALE_HEADS else "male" if cluster.head in MALE_HEADS else None


def cluster_mentions(mentions: list[Mention]) -> list[Cluster]:
    """Clusters in order of first mention: described mentions by (head, attrs), then bare ones by the rules."""
    for k, m in enumerate(mentions):
        m.order = k
    clusters: dict[tuple, Cluster] = {}
    for m in mentions:
        if m.attrs:
            clusters.setdefault((m.head, m.attrs), Cluster(m.head, m.attrs)).mentions.append(m)
    described: dict[str, list[tuple[Cluster, set[str]]]] = {}   # head → its described clusters and their clips
    for c in list(clusters.values()):
        described.setdefault(c.head, []).append((c, set(c.clip_ids)))
    for m in mentions:
        if m.attrs:
            continue
        # a cluster the caption names ("a man named Pedro") takes bare mentions of its own clip only: "a man"
        # elsewhere is not known to be Pedro
        same_head = [(c, clips) for c, clips in described.get(m.head, [])
                     if m.clip_id in clips or not any(x.named for x in c.mentions)]
        in_clip = [c for c, clips in same_head if m.clip_id in clips]
        target = same_head[0][0] if len(same_head) == 1 else in_clip[0] if len(in_clip) == 1 else None
        if target is None:
            target = clusters.setdefault((m.head, ()), Cluster(m.head, ()))
        target.mentions.append(m)
    ordered = sorted(clusters.values(), key=lambda c: min(m.order for m in c.mentions))
    for c in ordered:
        c.mentions.sort(key=lambda m: m.order)
    return ordered


def name_clusters(clusters: list[Cluster], names: dict[str, list[str]], naming: str,
                  genders: dict[str, str] | None = None) -> dict[int, str]:
    """Cluster index → name: the name the caption gives a mention ("a woman named Maria"), else for person
    clusters the spoken name, greedy by co-occurring clip count; each name used once. `names` are the
    names said of someone present in each clip (`present_names`); a name the speech gives one gender
    (`name_genders`) never goes to a person captioned as the other. A name that two free clusters would take
    on equal evidence (two women in the clip where "Hello Maria" is said) goes to neither.

    Ties go to the name said in fewer clips of the video (the more specific one: in "Tom waits for Maria",
    the man seen only there is Tom, not Maria who is named all along), then to the name said first (the
    subject usually opens the sentence: Whisper may write "Maria Bake, three loaves…" for "Maria bakes three
    loaves…"), then to the earlier cluster."""
    genders = genders or {}
    said_first = {name: k for k, name in enumerate(dict.fromkeys(n for clip in names.values() for n in clip))}
    spread = Counter(n for clip in names.values() for n in clip)
    candidates = []
    for idx, c in enumerate(clusters):
        if c.kind != "person":
            continue
        counts = Counter(n for clip in c.clip_ids for n in names.get(clip, []))
        candidates += [(-count, spread[name], said_first[name], idx, name) for name, count in counts.items()
                       if not (genders.get(name) and _gender_of(c) and genders[name] != _gender_of(c))]
    spoken, used = {}, set()
    for idx, c in enumerate(clusters):   # a name the text itself gives ("a woman named Maria") comes first
        given = Counter(m.named for m in c.mentions if m.named)
        if given:
            name = given.most_common(1)[0][0]
            if name not in used:
                spoken[idx], used = name, used | {name}
    for count, *_, idx, name in sorted(candidates):
        if idx in spoken or name in used:
            continue
        if any(other != idx and other not in spoken and n == name and c == count for c, *_, other, n in candidates):
            used = used | {name}   # as good a fit for another free cluster: which one it names is unknown
            continue
        spoken[idx], used = name, used | {name}
    numbers: Counter = Counter()
    for idx, c in enumerate(clusters):
        if idx in spoken:
            c.name = spoken[idx]
        elif naming == "numbered":
            label = "Person" if c.kind == "person" else c.head.capitalize()
            numbers[label] += 1
            c.name = f"{label} {numbers[label]}"
        else:
            richest = max(c.mentions, key=lambda m: (len(m.text.split()), -m.order))
            words = richest.text.split()
            c.name = " ".join(["the"] + [w if w.lower() not in DETERMINERS else "the" for w in words[1:]])
    return spoken


def _in_time_order(clip_ids: list[str], clips_in_order: dict[str, str]) -> list[str]:
    order = {k: i for i, k in enumerate(clips_in_order)}
    return sorted(clip_ids, key=order.__getitem__)


def renamed_caption(caption: str, mentions: list[Mention], names: dict[int, str]) -> str:
    """The caption with each mention (by id) replaced by its cluster name, capitalised at sentence starts."""
    out, last = [], 0
    for m in sorted(mentions, key=lambda m: m.start):
        name = names.get(id(m))
        if name is None:
            continue
        before = caption[:m.start].rstrip().rstrip("\"'”’)]").rstrip()   # a sentence may end inside quotes
        if not before or before[-1] in ".!?":
            name = name[0].upper() + name[1:]
        out += [caption[last:m.start], name]
        last = m.end
    return "".join(out) + caption[last:]


def _said_in(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text or "") is not None


def video_entities(rows: list[dict], config: EntitiesConfig) -> tuple[list[dict], dict[str, str | None]]:
    """The entity table and each clip's renamed caption (None without caption) for the rows of one video.

    Described things said in the transcript ("the red car") are mentions too, clustered with the caption's
    (a car said in one clip and captioned in another is one car); only caption mentions are rewritten. A
    spoken name that no caption cluster takes becomes an entity of its own (taken as a person, the rule
    names follow) when it is said, or written in a caption, in `min_clips` clips or more; a name's clips
    include those whose caption writes it."""
    per_clip = {r[R.CLIP_ID]: caption_mentions(r[R.CLIP_ID], r.get(R.CAPTION) or "") for r in rows}
    said = {r[R.CLIP_ID]: caption_mentions(r[R.CLIP_ID], r.get(R.TRANSCRIPT_TEXT) or "", source="transcript")
            for r in rows} if config.spoken_names else {}
    mentions = [m for clip in per_clip for m in per_clip[clip] + said.get(clip, [])]
    clusters = cluster_mentions(mentions)
    transcripts = {r[R.CLIP_ID]: r.get(R.TRANSCRIPT_TEXT) or "" for r in rows}
    tokens_of = tokenized(transcripts)
    names = spoken_names(transcripts, tokens_of) if config.spoken_names else {}
    spoken = name_clusters(clusters, present_names(tokens_of, names), config.naming, name_genders(tokens_of, names))
    captions = {r[R.CLIP_ID]: r.get(R.CAPTION) or "" for r in rows}
    table, mention_names = [], {}
    for idx, c in enumerate(clusters):
        clip_ids = c.clip_ids
        if idx in spoken:
            clip_ids = list(dict.fromkeys(clip_ids + [k for k in captions if _said_in(c.name, captions[k])]))
        if len(clip_ids) < config.min_clips and idx not in spoken:
            continue
        evidence = [{"clip_id": m.clip_id, "source": m.source, "text": m.text} for m in c.mentions]
        if idx in spoken:
            evidence += [{"clip_id": k, "source": "caption", "text": c.name} for k in clip_ids
                         if _said_in(c.name, captions[k])]
            evidence += [{"clip_id": k, "source": "transcript", "text": c.name}
                         for k in clip_ids if c.name in names.get(k, [])]
        table.append({"name": c.name, "kind": c.kind, "aliases": list(dict.fromkeys(m.text for m in c.mentions)),
                      "clip_ids": _in_time_order(clip_ids, captions), "evidence": evidence})
        mention_names.update({id(m): c.name for m in c.mentions})
    taken = {c.name for c in clusters}
    for name in dict.fromkeys(n for clip in names.values() for n in clip):
        if name in taken:
            continue
        in_speech = [k for k in names if name in names[k]]
        in_captions = [k for k in captions if _said_in(name, captions[k])]
        clip_ids = _in_time_order(list(dict.fromkeys(in_speech + in_captions)), captions)
        if len(clip_ids) < config.min_clips:
            continue
        evidence = ([{"clip_id": k, "source": "caption", "text": name} for k in in_captions]
                    + [{"clip_id": k, "source": "transcript", "text": name} for k in in_speech])
        table.append({"name": name, "kind": "person", "aliases": [name], "clip_ids": clip_ids, "evidence": evidence})
    renamed = {r[R.CLIP_ID]: (renamed_caption(r[R.CAPTION], per_clip[r[R.CLIP_ID]], mention_names)
                              if (r.get(R.CAPTION) or "").strip() else None) for r in rows}
    return table, renamed


class EntitiesStage(Stage):
    name = "entities"
    Config = EntitiesConfig
    reads = (R.VIDEO_ID, R.CLIP_ID, R.START_S, R.CAPTION)   # transcript_text too, when an asr stage ran
    writes = R.ENTITY_COLUMNS
    default_resources = Resources(num_cpus=0.25, batch_size=None)
    group_by = R.SOURCE_URI

    def process_batch(self, rows: list[dict]) -> list[dict]:
        by_video: dict[str, list[dict]] = {}
        for row in rows:
            by_video.setdefault(row.get(R.SOURCE_URI), []).append(row)
        out = []
        for clips in by_video.values():
            clips.sort(key=lambda r: (r.get(R.START_S) or 0.0, r.get(R.CLIP_ID) or ""))
            table, renamed = video_entities(clips, self.config)
            for r in clips:
                text = renamed[r[R.CLIP_ID]]
                row = {**r, R.ENTITIES: table, R.CAPTION_RENAMED: text}
                if self.config.apply_to_caption and text is not None:
                    row[R.CAPTION] = text
                out.append(row)
        return out
