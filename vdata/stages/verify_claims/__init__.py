"""verify_claims: the hallucination check (see stage.py); tier-1 matching in facts.py and
contradictions.py, the quote-checked teacher verdict in judge.py."""
from .contradictions import REFUTED, SUPPORTED, UNSUPPORTED, VERDICTS, match_claim
from .facts import Evidence, extract_facts, has_negation, split_claims, words
from .judge import judged, quote_match
from .stage import VerifyClaimsConfig, VerifyClaimsStage

__all__ = ["REFUTED", "SUPPORTED", "UNSUPPORTED", "VERDICTS", "Evidence", "VerifyClaimsConfig", "VerifyClaimsStage",
           "extract_facts", "has_negation", "judged", "match_claim", "quote_match", "split_claims", "words"]
