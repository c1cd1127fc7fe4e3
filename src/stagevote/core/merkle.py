"""The Merkle tree a closed round is sealed with, and its proofs: nothing but hashlib, so anyone can copy it.

The tree of a round (see the README, "Vote receipts and sealed rounds"):

- a leaf is SHA-256 of one counted vote's receipt, as ASCII bytes;
- the leaves are sorted (as bytes, which is the order of their hex);
- a node is SHA-256 of its two children's 32 bytes, the left child's first;
- on a level with an odd number of nodes, the last one is carried up to the next level unchanged;
- the root is the one node left, written as 64 hex digits. A round without a counted vote has the
  root SHA-256 of nothing (`e3b0c442…b855`).

A proof walks from the receipt's leaf to the root: for each level where the node had a sibling, the
sibling's hash and its side (`left`: the sibling is the left child, so the parent is SHA-256(sibling ||
node); `right`: SHA-256(node || sibling)). A level where the node was carried up adds nothing.

This module imports nothing from stagevote on purpose: copy it to check a proof anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(receipt: str) -> bytes:
    """The leaf of one receipt: SHA-256 of its ASCII bytes."""
    return hashlib.sha256(receipt.encode("ascii")).digest()


def _parent(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(left + right).digest()


def levels_of(receipts: Iterable[str]) -> list[list[bytes]]:
    """Every level of the tree, the sorted leaves first and the root's level last (empty: no level)."""
    level = sorted(leaf_hash(r) for r in receipts)
    if not level:
        return []
    levels = [level]
    while len(level) > 1:
        pairs = [_parent(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            pairs.append(level[-1])  # an odd node is carried up unchanged
        level = pairs
        levels.append(level)
    return levels


def root_of(receipts: Iterable[str]) -> str:
    """The root, in hex, of the tree of these receipts."""
    levels = levels_of(receipts)
    return levels[-1][0].hex() if levels else EMPTY_ROOT


def proof_from_levels(levels: Sequence[Sequence[bytes]], receipt: str) -> list[dict[str, str]] | None:
    """The proof `[{side, hash}]` that `receipt` is a leaf of the tree with these levels; None if it is not."""
    if not levels:
        return None
    leaf = leaf_hash(receipt)
    leaves = levels[0]
    index = _position(leaves, leaf)
    if index is None:
        return None
    proof: list[dict[str, str]] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append({"side": "left" if sibling < index else "right", "hash": level[sibling].hex()})
        index //= 2
    return proof


def proof_of(receipts: Iterable[str], receipt: str) -> list[dict[str, str]] | None:
    """The proof for `receipt` in the tree of `receipts`; None when it is not one of them."""
    return proof_from_levels(levels_of(receipts), receipt)


def verify_inclusion(receipt: str, proof: Sequence[dict[str, str]], root: str) -> bool:
    """Whether `proof` leads from `receipt`'s leaf to `root` (hex). Needs nothing but hashlib."""
    try:
        node = hashlib.sha256(receipt.encode("ascii")).digest()
        for step in proof:
            sibling = bytes.fromhex(step["hash"])
            if len(sibling) != 32:
                return False
            if step["side"] == "left":
                node = hashlib.sha256(sibling + node).digest()
            elif step["side"] == "right":
                node = hashlib.sha256(node + sibling).digest()
            else:
                return False
        return node.hex() == root.lower()
    except (KeyError, ValueError, TypeError, UnicodeEncodeError):
        return False


def _position(leaves: Sequence[bytes], leaf: bytes) -> int | None:
    """Where `leaf` is in the sorted `leaves` (binary search), or None."""
    low, high = 0, len(leaves)
    while low < high:
        middle = (low + high) // 2
        if leaves[middle] < leaf:
            low = middle + 1
        else:
            high = middle
    return low if low < len(leaves) and leaves[low] == leaf else None
