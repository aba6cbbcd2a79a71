"""The sign-in page in Signoff's own design (FAB's password login, its template ours).

FAB's ``AuthDBView`` keeps doing the work (the form, the rate limit, the checks of
:class:`signoff.security.manager.SignoffSecurityManager`); only the page is
``signoff/login.html``: the portal's layout, a ``lang``, a main landmark and an h1,
and a field labelled "E-mail or username" because both sign in.
"""

from __future__ import annotations

from flask_appbuilder.security.views import AuthDBView


class SignoffAuthDBView(AuthDBView):
    login_template = "signoff/login.html"
