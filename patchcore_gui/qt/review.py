"""Operator review, keyboard first: O / N confirm the selected image OK / NG and move on.

Pressing the key of the verdict an image already has clears it (and stays on it).
Verdicts are stored in the run file with the time and the operator's name; a
read-only run refuses them (the user is told), a run without a writable file keeps
them in memory (told once).
"""

from __future__ import annotations

from patchcore_gui.core.result_table import OP_NG, OP_NONE, OP_OK, OPERATOR_WORDS
from patchcore_gui.core.verdict import OK

from .document import InspectionDocument
from .results_panel import ResultsPanel


def mark_current(doc: InspectionDocument, view: ResultsPanel, verdict: str, operator: str) -> bool:
    """Toggle ``verdict`` ("OK" / "NG") on the image selected in ``view``; True when it changed.

    ``operator``: the name stored with the verdict.
    """
    st = doc.results
    i = view.current_image()
    if st is None or i < 0 or not st.done[i]:
        return False
    session = doc.session
    code = OP_OK if verdict == OK else OP_NG
    new = OP_NONE if int(st.operator[i]) == code else code
    if session.readonly:
        session.set_verdict(i, OPERATOR_WORDS[new], operator)  # tells why not
        return False
    saved = session.set_verdict(i, OPERATOR_WORDS[new], operator)
    st.operator[i] = new
    model = view.model
    row = model.row_of(i)
    model.operator_changed(i)
    pos = model.row_of(i)
    if pos >= 0:
        # Still listed: a new verdict moves on to the next image, a cleared one stays.
        view.select_row(pos + 1 if new != OP_NONE else pos)
    else:
        # Filtered out by the review filter: the next image now sits on its row.
        view.select_row(row)
    name = st.names[i]
    text = f"{name}: {OPERATOR_WORDS[new]} confirmed" if new else f"{name}: review cleared"
    doc.show_status(text + ("" if saved else " (not saved in a run file)"), 4000)
    return True
