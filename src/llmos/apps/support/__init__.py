"""The customer-service assistant (F10): each turn answers from the FAQ verbatim, answers
with a generation deployment from retrieved passages (with citations), or hands the
session to a person. Built only on `llmos.ops` (prediction, knowledge search,
generation); `ops.support` stores sessions and hand-offs and calls `assistant.answer`."""
