"""The LLM writer: a prompt variant filled with the ticket and (when the verdict says a case fits) the fitting
cases, sent to any ``ChatModel`` within one deadline per draft and a bounded number of slots, streamed sentence
by sentence through the guard and the output checks."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from typing import Callable, Sequence

from rag.configs import DraftConfig
from rag.draft import output_checks
from rag.draft.actions import classify_reply
from rag.draft.areas import DOC_ROOTS
from rag.draft.sentences import says_something
from rag.draft.voice import check as check_voice, link_key, links_in, without_internal
from rag.draft.deferral import VerdictTexts
from rag.draft.guards import Guard, block, escape_field, repeats_prompt, unescape_field
from rag.draft.policy import Verdict
from rag.draft.resolution import resolve
from rag.draft.writers import Reply
from rag.draft.language import is_english
from rag.draft.writers.offline import DOC_LINE, OfflineWriter
from rag.errors import ContextLengthError, LLMError
from rag.llm.bounds import Deadline
from rag.llm.chat import ChatModel
from rag.llm.prompts import PromptPair
from rag.notes import ContextTrimmed, DocLinkAdded, LLMDoesNotAnswer, LLMMoreCautious, LLMOverruled, Note
from rag.records import Action, Hit, Ticket, Usage
from rag.text.markers import ANSWER_GREETING, REPLY_GREETING, strip_image_markers

# Small models put the marker anywhere (first line, mid-sentence, twice): the first one is the action,
# every one is removed from the text.
_ACTION = re.compile(r"[ \t]*\bACTION\s*[:：]\s*(answer|ask_for_info|escalate)\b[ \t]*\n?", re.I)
CASE_ANSWER_CHARS = 700
ANSWERS_ONLY = "answers-only.md"
# A variant whose user prompt holds ``{{draft}}`` edits the offline draft instead of writing from the cases: a
# reply may grow past the draft by this much (a lead-in naming the customer's problem), no more.
EDIT_GROWTH_CHARS = 120
_CHINESE_REPLY = f"用中文回复，以“{REPLY_GREETING}”开头"
_ENGLISH_REPLY = 'The customer wrote in English: reply in English, starting with "Hello,"'


def format_cases(hits: Sequence[Hit], answer_chars: int = CASE_ANSWER_CHARS,
                 resolutions: Sequence[str | None] = ()) -> str:
    """The cases as the prompt shows them. ``resolutions[i]``, when given, stands for case i's answer: what the
    agent said that resolves this ticket's problem (``rag.draft.resolution``), not the whole dialogue."""
    blocks = []
    for n, h in enumerate(hits, start=1):
        question = strip_image_markers(h.case.question)[:300]
        resolution = resolutions[n - 1] if n <= len(resolutions) else None
        # A resolution is whole sentences within the budget already; a raw answer is cut where the budget ends.
        answer = resolution or strip_image_markers(h.answer)[:answer_chars]
        # Case text is data too (feedback can become a case): escaped into its own block.
        blocks.append(
            f"<case_{n}>\n[案例 {n}] 编号 {h.case_id}｜{escape_field(h.product)}｜{escape_field(h.subcategory)}\n"
            f"标题：{escape_field(h.title)}\n客户问题：{escape_field(question)}\n客服回复：{escape_field(answer)}\n</case_{n}>"
        )
    return "\n\n".join(blocks)


def shown_cases(ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, limit: int,
                chars: int) -> list[tuple[Hit, str | None]]:
    """The cases the prompt shows, each with its resolution of ``ticket`` (None: nothing in it is reusable): the
    fitting cases of the dataset, best first, at most ``limit``, and only when the verdict answers.

    Cases that do not fit are not shown: told not to use them, a 0.5B model copied them anyway, and a big model
    has nothing to take from them that the verdict's list of details does not say. A fitting feedback case is
    not shown either: like the offline draft, the reply rests on the dataset's own cases (issue 24). A case whose
    resolution repeats one already shown is skipped (the corpus holds the free-certificate template many times).
    Resolutions are judged against the other top candidates' answers, as the offline writer judges them, within
    ``chars`` (whole sentences)."""
    if verdict.action != "answer":
        return []
    pool = list(hits[:5])
    out: list[tuple[Hit, str | None]] = []
    for h in verdict.fitting:
        if len(out) >= limit:
            break
        if h.case.provenance is not None:
            continue
        # The prompt's share per case is a hard cap (tokens): a list is cut where it falls.
        resolution = resolve(h.case, ticket.query_text, [o.answer for o in pool if o.case_id != h.case_id], chars,
                             list_grace=0)
        text = resolution.text if resolution is not None else None
        if text is not None and any(text == shown for _, shown in out):
            continue
        out.append((h, text))
    return out


def dropped_links(body: str, resolutions: Sequence[str | None]) -> list[str]:
    """The links of ``resolutions`` (the fitting cases', best first) when the best one holds links and the reply
    carries none of any (compared by host and path, with or without a scheme); empty otherwise. A best resolution
    without a link is whole in words, and a reply drawn from it carries none."""
    theirs = list(dict.fromkeys(u for r in resolutions if r for u in links_in(r)))
    best = resolutions[0] if resolutions else None
    mine = {link_key(u) for u in links_in(body)}
    return [] if not best or not links_in(best) or any(link_key(u) in mine for u in theirs) else theirs


# Code an agent pasted (``GlobalConfiguration.getInstance().isDnsOpen = false``, ``persistentNotifyUrl``): a dotted
# name or a camelCase one. The 0.5B model, editing, kept 「关闭 DNS 预解析就可以了」 and dropped the line that does it.
_CODE = re.compile(r"(?<![A-Za-z0-9_.])(?:[A-Za-z_][A-Za-z0-9_]+(?:\(\))?(?:\.[A-Za-z_][A-Za-z0-9_]+(?:\(\))?)+"
                   r"|[a-z]+[A-Z][A-Za-z0-9_]*)")


def lost_literals(body: str, draft: str) -> list[str]:
    """What an edit (``body``) of ``draft`` no longer carries of the draft's links (by host and path) and code."""
    mine = {link_key(u) for u in links_in(body)}
    theirs = links_in(draft)
    lost = [u for u in dict.fromkeys(theirs) if link_key(u) not in mine]
    without_links = draft
    for u in theirs:
        without_links = without_links.replace(u, " ")
    flat = re.sub(r"\s+", "", body).lower()
    return lost + [c for c in dict.fromkeys(m.group(0) for m in _CODE.finditer(without_links))
                   if re.sub(r"\s+", "", c).lower() not in flat]


def ticket_fields(ticket: Ticket) -> dict[str, str]:
    """Every part of a ticket that reaches the prompt, by the name of its block."""
    history = "\n".join(f"{'客户' if t.role == 'customer' else '客服'}：{t.text}" for t in ticket.history)
    return {"ticket_title": ticket.title, "ticket_product": ticket.product or "", "conversation_history": history,
            "customer_message": ticket.text}


def ticket_context(ticket: Ticket) -> str:
    """What the guard compares a reply with: everything the customer (and the conversation) said."""
    history = "\n".join(t.text for t in ticket.history)
    return f"{ticket.title}\n{ticket.text}\n{history}"


def parse_llm_reply(text: str) -> tuple[Action | None, str]:
    m = _ACTION.search(text)
    if not m:
        return None, text.strip()
    return m.group(1).lower(), _ACTION.sub("", text).strip()  # type: ignore[return-value]  # _ACTION matches only Action values


class LLMWriter:
    streams = True

    def __init__(self, config: DraftConfig, llm: ChatModel, prompts: PromptPair, texts: VerdictTexts,
                 guard: Guard, *, deadline: float = 60.0) -> None:
        self.config = config
        self.deadline = deadline  # RAG_LLM_DEADLINE: the LLM group's, passed along by the pipeline
        self.llm = llm
        self.prompts = prompts
        self.texts = texts
        self.guard = guard
        # Bounds the LLM calls in flight: when every slot hangs on a slow endpoint, the next drafts fall
        # back to offline at once instead of pinning the service's worker threads.
        self._slots = threading.BoundedSemaphore(config.llm_max_concurrent)
        # A variant may leave every draft that does not answer to the team's own texts (``prompts/replies/``:
        # the related case's pointer, the area's documentation, exactly the details to ask for, and the agent's
        # hint), as the offline writer words them; ``answers-only.md`` in its folder says why.
        self.answers_only = (config.prompts_dir / prompts.variant / ANSWERS_ONLY).is_file()
        # A variant that edits the offline answer (``prompts/edit/``): the model tidies the team's own resolution
        # for this ticket instead of retelling it; the 1.5B model retold it and lost what answers (docs/llm.md).
        self.edits = "draft" in prompts.user.variables
        self._offline = OfflineWriter(texts)  # the team's own texts, and the answer an editing variant works on

    @property
    def backend(self) -> str:
        return f"llm:{self.llm.model}"

    def messages(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, *, limit: int | None = None,
                 resolved: Sequence[tuple[Hit, str | None]] | None = None,
                 draft: str | None = None) -> list[dict[str, str]]:
        """The prompt for ``ticket``: the system prompt, and the user message with the shown cases (at most
        ``limit``, else ``llm_context_cases``), the ticket's blocks and the verdict's instruction. ``resolved``:
        ``shown_cases`` of every fitting case, when the caller has them already (the first ``limit`` are shown).
        ``draft``: the offline writer's answer, which an editing variant works on."""
        values = {"allowed_domains": "、".join(self.config.link_allowlist)}
        if "reply_language" in self.prompts.system.variables:
            # A variant may state the language outright: told "if the customer wrote in English, reply in
            # English", the 0.5B model answered Chinese tickets in English when no case was shown.
            values["reply_language"] = _ENGLISH_REPLY if is_english(ticket) else _CHINESE_REPLY
        system = self.prompts.system.render(**{k: v for k, v in values.items() if k in self.prompts.system.variables})
        fields = ticket_fields(ticket)
        fields["ticket_product"] = ticket.product or (hits[0].product if hits else "未知")
        # The resolution, not the raw answer: a past dialogue holds questions back, other problems the customer
        # moved on to and that customer's details, and a small model copies whatever it is shown.
        limit = self.config.llm_context_cases if limit is None else limit
        shown = (list(resolved[:limit]) if resolved is not None
                 else shown_cases(ticket, hits, verdict, limit, self.config.llm_case_chars)
                 if {"cases", "verdict"} & self.prompts.user.variables else [])
        parts: dict[str, Callable[[], str]] = {
            "cases": lambda: format_cases([h for h, _ in shown], self.config.llm_case_chars, [r for _, r in shown])
            or "（没有可以直接参考的案例）",
            # An empty block is noise a small model tries to answer; the message block is always there.
            "ticket": lambda: "\n".join(block(name, text) for name, text in fields.items()
                                        if text.strip() or name == "customer_message"),
            # The verdict names the cases the model is shown, not the fitting ones it is not.
            "verdict": lambda: self.texts.instruction(
                replace(verdict, fitting=tuple(h for h, _ in shown)) if shown else verdict),
            # Escaped like case text: the draft is made of other customers' dialogues.
            "draft": lambda: escape_field(draft or ""),
        }
        # Each variant uses the parts it names; a name no part has is the template's error (PromptError).
        user = self.prompts.user.render(**{k: make() for k, make in parts.items() if k in self.prompts.user.variables})
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def write(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, *, k: int,
              on_delta: Callable[[str], None] | None = None) -> Reply:
        if self.answers_only and verdict.action != "answer":
            return self._offline.write(ticket, hits, verdict, k=k)
        draft = doc_line = None
        if self.edits:
            offline = self._offline.write(ticket, hits, verdict, k=k)
            if offline.action != "answer":
                # Nothing in the fitting cases answers (the offline writer says why in its text and notes): there
                # is no answer to edit, and a model asked to write one from the cases would make it up.
                return offline
            draft = offline.text
            head, _, last = draft.rpartition("\n")
            if DocLinkAdded() in offline.notes and head and last.startswith(DOC_LINE):
                # The doc links the writer added are no part of the answer to edit: the model gets the answer, and
                # the line goes back under its edit (the 0.5B model dropped it, and the whole edit was refused).
                draft, doc_line = head, last
        deadline = Deadline.after(self.deadline)  # one budget for every attempt of this draft
        if not self._slots.acquire(timeout=min(self.config.llm_queue_seconds, deadline.remaining())):
            raise LLMError(f"all {self.config.llm_max_concurrent} LLM slots are busy (RAG_LLM_MAX_CONCURRENT)")
        try:
            reply = self._write(ticket, hits, verdict, on_delta, deadline, draft, withheld=doc_line or "")
        finally:
            self._slots.release()
        if doc_line:
            kept = {link_key(u) for u in links_in(reply.text)}
            if any(link_key(u) not in kept for u in links_in(doc_line)):  # a reply that kept the line anyway: once
                if on_delta is not None:  # streamed like the rest: the screen shows what the draft says
                    on_delta("\n" + self.guard.scrub(doc_line, ticket_context(ticket)).text)
                return replace(reply, text=f"{reply.text}\n{doc_line}")
        return reply

    def _write(self, ticket: Ticket, hits: Sequence[Hit], verdict: Verdict, on_delta, deadline: Deadline,
               draft: str | None, *, withheld: str = "") -> Reply:
        """``withheld``: the draft's added doc-link line, kept from the model (a reply that repeats it anyway may be
        that much longer)."""
        limit = self.config.llm_context_cases
        notes: list[Note] = []
        trimmed = False
        context = ticket_context(ticket)
        # Every fitting case with its resolution, once: the prompt shows the first ``limit``, the dropped-links
        # check below reads them all.
        resolved = (shown_cases(ticket, hits, verdict, len(verdict.fitting), self.config.llm_case_chars)
                    if draft is None or "cases" in self.prompts.user.variables else [])
        while True:
            messages = self.messages(ticket, hits, verdict, limit=limit, resolved=resolved, draft=draft)
            checker = output_checks.ReplyChecker(context, messages[0]["content"], self.config.link_allowlist)
            try:
                if on_delta is not None:
                    # The same guard as the whole draft's: a streamed sentence is checked exactly like it.
                    # The internal framing the final draft drops (rag.draft.voice) never reaches the screen either.
                    gate = output_checks.CheckedStream(
                        checker, lambda piece: self.guard.scrub(without_internal(unescape_field(piece))[0], context).text,
                        on_delta)
                    parts = []
                    for delta in self.llm.stream(messages, deadline=deadline):
                        parts.append(delta)
                        gate.feed(delta)
                    gate.close()
                    text, usage = "".join(parts), Usage()
                else:
                    completion = self.llm.complete(messages, deadline=deadline)
                    text, usage = completion.text, completion.usage
                break
            except ContextLengthError:
                # One more try with the least relevant cases dropped; a second overflow is final.
                count = len(resolved[:limit])
                if trimmed or count <= 1:
                    raise
                limit = max(1, count // 2)
                trimmed = True
                notes.append(ContextTrimmed(limit))
        action, body = parse_llm_reply(unescape_field(text))
        if not body.strip():  # small models sometimes stop after the ACTION line: that is no draft
            raise LLMError("the LLM reply has no text besides the ACTION line")
        checked = checker.check(body)
        if checked.refusal:
            raise LLMError(checked.refusal)
        body = output_checks.strip_invisible(body)
        if repeats_prompt(body, messages[0]["content"]):
            raise LLMError("the LLM reply quoted the system prompt; refused")
        # The team's voice: plain text, links the cases or the docs hold, the team's length.
        shown = set(self.guard.known_links) | set(links_in(context))  # with or without a scheme, as the cases write
        voice = check_voice(body, shown, DOC_ROOTS, self.config.link_allowlist)
        if not voice.text.strip():
            raise LLMError("nothing was left of the LLM reply once its Markdown and composed links were removed")
        body = voice.text
        checked = replace(checked, markdown=voice.markdown, composed=voice.composed,
                          shortened_to=len(body) if voice.shortened else 0, internal=voice.internal)
        action = self._action(action, body, verdict, notes)
        if action == "answer" and not checked.followed and not says_something(ANSWER_GREETING.sub("", body)):
            # A slogan ("我被攻破了") or a bare greeting resolves nothing: the offline draft from the case does.
            raise LLMError("the LLM reply says nothing a customer could act on")
        if action == "answer" and not checked.followed:
            dropped = lost_literals(body, draft) if draft is not None else dropped_links(body, [r for _, r in resolved])
            if dropped:
                # The page or the console link is usually what answers (the team's resolutions lead with it); the
                # 1.5B model paraphrased it away in half the dev answers it lost key content on (docs/llm.md).
                # An edit keeps every link and line of code of its draft: the draft holds only what the fitting case
                # resolves with.
                what = ("links or code of the draft it edits" if draft is not None
                        else "every link of the resolution it answers from")
                raise LLMError(f"the LLM reply left out {what} ({', '.join(dropped[:3])}); "
                               f"the case's own resolution is the better draft")
        if draft is not None and len(body) > len(draft) + len(withheld) + EDIT_GROWTH_CHARS:
            # An edit that grew past a lead-in retold the answer (steps, causes and promises the draft lacks).
            raise LLMError(f"the LLM reply ran {len(body) - len(draft)} characters past the draft it edits "
                           f"(at most {EDIT_GROWTH_CHARS}); the draft itself is the better reply")
        return Reply(body, action, verdict.match, verdict.fitting, tuple(hits[: self.config.llm_context_cases]),
                     self.backend, self.prompts.id,
                     self.prompts.version, usage=usage, notes=tuple(notes), checks=checked)

    @staticmethod
    def _action(said: Action | None, body: str, verdict: Verdict, notes: list[Note]) -> Action:
        """The verdict decides the action; the model's reply may only make it more cautious.

        The prompts ask for the body alone (a 0.5B model asked for the action first often stopped after it);
        a model that still writes an ``ACTION:`` line anywhere is read, so a big model can say the cases do
        not fit, and a reply that mainly asks for details or hands over is not labelled an answer.
        """
        if said is None:
            inferred = classify_reply(body)
            if verdict.action == "answer" and inferred != "answer":
                notes.append(LLMDoesNotAnswer(inferred))
                return inferred
            return verdict.action
        if said == verdict.action:
            return verdict.action
        if said == "answer":
            # The model may not overrule the match verdict: no past case fits, so this is not an answer.
            notes.append(LLMOverruled(verdict.match, verdict.threshold, verdict.action))
            return verdict.action
        notes.append(LLMMoreCautious(said, verdict.action))
        return said
