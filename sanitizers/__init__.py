"""Pure mail sanitization: untrusted bytes and a policy in, a new text-only message and a
report out. Nothing here knows about SMTP, disks or asyncio."""
