"""Firebase Realtime Database security rules: parse a rules file, judge reads and writes.

``RuleSet.from_text`` loads a rules file (JSON with comments) and compiles
every expression up front; ``can_read``/``can_write`` then evaluate them per
request, and ``index_on`` reports declared indexes. Modules, in pipeline order:
``source`` (comment-aware JSON), ``lexer``/``parser``/``nodes`` (expressions),
``evaluate`` (closures), ``operators``/``methods``/``snapshot``/``regex``
(runtime semantics), ``ruletree`` (rules by location), ``ruleset`` (the API).
"""

from .errors import RulesError
from .ruleset import RuleSet

__all__ = ["RuleSet", "RulesError"]
