-- Erasing a user's personal data (issue 20): their sessions and login throttle row go.
GRANT DELETE ON refresh_tokens, login_throttle TO docket_app;
