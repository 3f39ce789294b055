"""Who is calling and what they may do: token validation, request context, policy."""
