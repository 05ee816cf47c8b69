"""The web front-ends over the same services and tenancy as the API: the borrower app (`/app/`), the institution
portal (`/portal/`), the operator console (`/console/`) and the collections desk (`/desk/`)."""
