"""The outbound direction: mail from the LGWAN side to the Internet, checked and approved before
it leaves (issue 19).

- :mod:`.listener`: its own SMTP listener (``[outbound] listen``), only for
  ``client_networks``; 250 only once spooled, like inbound mail.
- :mod:`.auth`: optional SMTP AUTH on that listener (``[outbound] auth``): store users, the
  console's password hasher, lockouts per user and address.
- :mod:`.checking`: the checks in a pool process (malware scan with clamd, My Number, the
  ``[policy.outbound]`` rules), pure but for the scanner.
- :mod:`.stage`: the order delay → filters and approval → conversion, per spooled message;
  rate limits (:mod:`.rates`); cancel by the sender during the delay.
- :mod:`.leaving`: the message as it leaves: the sender's bytes but for Bcc conversion and a
  DKIM signature.
- :mod:`.approvals`: serve's job that carries out approvers' decisions (上長承認) recorded in
  the store, refuses mail nobody decided on in time, and tells the sender.
- :mod:`.notices`: what the sender is told (Japanese and English), through the LGWAN-side MTA.

The CDR pipeline is for the inbound direction only: outbound mail is never rebuilt.
"""
