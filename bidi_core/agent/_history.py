"""Conversation history in the ``Messages`` shape, built from the event stream."""

from __future__ import annotations

from ..types import ContentBlock, Message, Messages, ToolResult, ToolUse

__all__ = ["History"]


class History:
    """Builds ``Messages`` from what the agent sends and receives.

    Rules (so a restarted model sees the conversation exactly once):

    * Final transcripts and sent text are merged per turn and role: consecutive
      text of the same role extends the last message's text block.
    * A final transcript is recorded once per ``item_id``; a user transcript that
      only echoes text the agent sent is not recorded twice.
    * A tool use is an ``assistant`` ``toolUse`` block; its result is a ``user``
      ``toolResult`` block placed right after it, even if talk happened in between.
    * Assistant text cut short by barge-in carries ``"interrupted": True``.
    """

    def __init__(self, messages: Messages | None = None) -> None:
        self._messages: Messages = [
            {"role": m["role"], "content": [dict(b) for b in m["content"]]}  # type: ignore[misc]
            for m in (messages or [])
        ]
        self._final_items: set[str] = set()
        self._sent_texts: list[str] = []

    @property
    def messages(self) -> Messages:
        """A copy of the conversation so far."""
        return [
            {"role": m["role"], "content": [dict(b) for b in m["content"]]}  # type: ignore[misc]
            for m in self._messages
        ]

    def checkpoint(self) -> tuple[Messages, frozenset[str], tuple[str, ...]]:
        """Return the state to :meth:`restore` if an input turns out not to be sent."""
        return self.messages, frozenset(self._final_items), tuple(self._sent_texts)

    def restore(self, state: tuple[Messages, frozenset[str], tuple[str, ...]]) -> None:
        """Go back to a :meth:`checkpoint`, keeping nothing recorded since."""
        messages, finals, sent = state
        self._messages = messages
        self._final_items = set(finals)
        self._sent_texts = list(sent)

    def __len__(self) -> int:
        return len(self._messages)

    def _append_text(self, role: str, text: str, *, interrupted: bool = False) -> None:
        text = text.strip()
        if not text:
            return
        last = self._messages[-1] if self._messages else None
        if last is not None and last["role"] == role and last["content"]:
            block = last["content"][-1]
            if "text" in block and bool(block.get("interrupted")) == interrupted:
                block["text"] = f"{block['text']} {text}"
                return
            new: ContentBlock = {"text": text}
            if interrupted:
                new["interrupted"] = True
            last["content"].append(new)
            return
        block_new: ContentBlock = {"text": text}
        if interrupted:
            block_new["interrupted"] = True
        self._messages.append({"role": role, "content": [block_new]})  # type: ignore[typeddict-item]

    def user_text_sent(self, text: str) -> None:
        """Record text the user sent (it may come back as a user transcript: not twice)."""
        self._sent_texts.append(text.strip())
        del self._sent_texts[:-8]
        self._append_text("user", text)

    def withdraw_user_text(self, text: str) -> bool:
        """Take back the latest recording of sent *text* (it will be sent again).

        Returns:
            Whether it was found at the end of a user text block and removed.
        """
        text = text.strip()
        if not text:
            return False
        for position in range(len(self._messages) - 1, -1, -1):
            message = self._messages[position]
            if message["role"] != "user":
                continue
            for index in range(len(message["content"]) - 1, -1, -1):
                block = message["content"][index]
                current = block.get("text")
                if not isinstance(current, str) or not current.endswith(text):
                    continue
                rest = current[: len(current) - len(text)]
                if rest and not rest.endswith(" "):
                    continue  # "ping 18" does not withdraw "8"
                if rest.strip():
                    block["text"] = rest.rstrip()
                else:
                    del message["content"][index]
                    if not message["content"]:
                        del self._messages[position]
                if text in self._sent_texts:
                    self._sent_texts.remove(text)
                return True
        return False

    def final_transcript(
        self, role: str, text: str, item_id: str | None, *, interrupted: bool = False
    ) -> bool:
        """Record a final transcript; returns False if it was a duplicate."""
        if role not in ("user", "assistant"):
            return False
        if item_id is not None:
            key = f"{role}:{item_id}"
            if key in self._final_items:
                return False
            self._final_items.add(key)
        if role == "user" and text.strip() in self._sent_texts:
            self._sent_texts.remove(text.strip())
            return False
        self._append_text(role, text, interrupted=interrupted)
        return True

    def tool_use(self, tool_use: ToolUse) -> None:
        """Record the model's tool call."""
        block: ContentBlock = {"toolUse": dict(tool_use)}  # type: ignore[typeddict-item]
        last = self._messages[-1] if self._messages else None
        if last is not None and last["role"] == "assistant":
            last["content"].append(block)
        else:
            self._messages.append({"role": "assistant", "content": [block]})

    def tool_result(self, result: ToolResult) -> None:
        """Record a tool result right after the message holding its tool use."""
        block: ContentBlock = {"toolResult": dict(result)}  # type: ignore[typeddict-item]
        tool_use_id = result["toolUseId"]
        for index in range(len(self._messages) - 1, -1, -1):
            message = self._messages[index]
            if any(
                b.get("toolUse", {}).get("toolUseId") == tool_use_id for b in message["content"]
            ):
                after = self._messages[index + 1] if index + 1 < len(self._messages) else None
                if (
                    after is not None
                    and after["role"] == "user"
                    and all("toolResult" in b for b in after["content"])
                ):
                    after["content"].append(block)
                else:
                    new: Message = {"role": "user", "content": [block]}
                    self._messages.insert(index + 1, new)
                return
        # No matching use (e.g. history passed in without it): keep it as user text.
        self._append_text("user", _result_as_text(result))


def _result_as_text(result: ToolResult) -> str:
    from ..tools import tool_result_text  # noqa: PLC0415 - avoid an import cycle

    return f"Tool result {result['toolUseId']} ({result['status']}): {tool_result_text(result)}"
