#!/usr/bin/env python3
"""Generates the support-tickets example dataset (deterministic, seeded; plain Python).

Writes train.jsonl (300 chats) and heldout.jsonl (20 chats) next to this file, one chat per line:
  {"messages": [{"role": "system", ...}, {"role": "user", "content": ticket},
                {"role": "assistant", "content": reply}]}
for the support team of Acme Cloud Storage, a fictional company. Tickets and replies come from
combinable templates written for this project (products, symptoms, customer names, amounts).

Reply policy (what the fine-tuned adapter should learn; the system prompt does not state it):
- tone: warm and concise; greets the customer by name when the ticket is signed; signs off
  "— Acme Support";
- a ticket about data loss, a security incident, or a charge over $500 is escalated: the reply
  starts "ESCALATED to Tier 2:", gives a case reference ACS-###### (six digits), says what the
  customer should do meanwhile and when Tier 2 will answer;
- every other ticket is resolved directly with concrete numbered steps.

  python3 examples/support-tickets/make_dataset.py [--check-tokens]
--check-tokens counts each chat's tokens with SmolLM2's chat template (needs transformers and
the gguf package, e.g. the venv of scripts/setup_peft_venv.sh) and fails if one exceeds 256.
"""
import argparse
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 1234
N_TRAIN, N_HELDOUT = 300, 20
MAX_TOKENS = 256
SYSTEM = "You are the customer support assistant of Acme Cloud Storage."
SIGN_OFF = "— Acme Support"

NAMES = ["Maya", "Tom", "Priya", "Lucas", "Aisha", "Ben", "Chen", "Sofia", "Omar", "Grace",
         "Diego", "Hannah", "Kenji", "Laura", "Mateo", "Nina", "Olu", "Rosa", "Sam", "Yara",
         "Ivan", "Elif", "Jonas", "Keisha", "Marco", "Noor", "Pavel", "Rita", "Theo", "Zoe"]
HELDOUT_NAMES = ["Amara", "Felix", "Ingrid", "Ravi", "Lena", "Kwame"]
PLATFORMS = ["Windows 11", "Windows 10", "macOS", "Ubuntu", "my MacBook", "my work laptop"]
PHONES = ["iPhone", "Android phone", "iPad", "Pixel", "Galaxy phone"]
FOLDERS = ["Projects", "Invoices", "Family Photos", "Thesis", "Client Work", "Designs",
           "Music", "Receipts", "Team Docs", "Videos"]
FILES = ["budget.xlsx", "report.docx", "logo.psd", "slides.pptx", "notes.txt", "contract.pdf",
         "photo_0412.jpg", "backup.zip"]
PLANS = [("Plus", "200 GB", "$4.99"), ("Pro", "2 TB", "$11.99"), ("Business", "5 TB", "$18")]
COUNTRIES = ["Brazil", "Romania", "Vietnam", "Nigeria", "Russia", "Singapore", "Peru"]
SYNC_ERRORS = ["ERR-SYNC-409", "ERR-SYNC-503", "ERR-AUTH-401", "ERR-DISK-28"]


class Gen:
    def __init__(self, rng):
        self.r = rng

    def pick(self, xs):
        return self.r.choice(xs)

    def money(self, lo, hi):
        cents = self.r.randint(int(lo * 100), int(hi * 100))
        return f"${cents // 100:,}.{cents % 100:02d}"

    def case_ref(self):
        return f"ACS-{self.r.randint(100000, 999999)}"

    def signed(self, body, name):
        """The ticket, signed by `name` in one of several ways (or not at all if None)."""
        if name is None:
            return body
        return body + self.pick([f"\n\nThanks, {name}", f"\n\n— {name}", f"\n\n{name}",
                                 f" Thanks! {name}"])

    def greet(self, name):
        return f"Hi {name}," if name else "Hi there,"

    def reply(self, name, lines):
        return "\n".join([self.greet(name)] + lines + [SIGN_OFF])

    def steps(self, items):
        return [f"{i + 1}. {s}" for i, s in enumerate(items)]

    # ---- resolved directly ----------------------------------------------------------------

    def sync_stuck(self, name):
        plat, folder, err = self.pick(PLATFORMS), self.pick(FOLDERS), self.pick(SYNC_ERRORS)
        ticket = self.pick([
            f"The Acme Drive app on {plat} has been stuck on \"Syncing…\" for hours. The "
            f"{folder} folder never finishes.",
            f"Sync keeps failing with {err} on {plat}. Nothing new shows up on the web.",
            f"My {folder} folder stopped syncing yesterday. The desktop app on {plat} just spins.",
        ])
        body = self.pick(["Sorry the sync is stuck — let's get it moving again.",
                          "Thanks for the details — a stuck sync is usually quick to fix."])
        return ticket, self.reply(name, [body] + self.steps([
            "Click the Acme Drive icon and choose Pause, then Resume sync.",
            "Check you are signed in under Settings > Account; sign in again if asked.",
            "If it still spins, quit the app and reopen it to rebuild the sync queue.",
        ]) + ["Large folders can take a while after that, so give it an hour."])

    def password_reset(self, name):
        ticket = self.pick([
            "I forgot my password and the reset email never arrives.",
            "Can't log in — it says my password is wrong but I'm sure it's right.",
            "How do I reset my Acme password? I'm locked out.",
        ])
        return ticket, self.reply(name, [
            "No worries, this happens to everyone!"] + self.steps([
                "Go to acme.example/reset and enter the email on your account.",
                "Check your spam folder for a message from no-reply@acme.example.",
                "The link works for 30 minutes; request a new one if it expired.",
            ]) + ["If nothing arrives in 10 minutes, reply here and we'll check the address."])

    def lost_2fa(self, name):
        phone = self.pick(PHONES)
        ticket = self.pick([
            f"I got a new {phone} and my authenticator codes are gone. How do I sign in?",
            f"Lost my {phone}, so I can't get my two-factor code anymore.",
        ])
        return ticket, self.reply(name, [
            "Sorry about the phone — you can still get in."] + self.steps([
                "On the sign-in page choose \"Use a recovery code\".",
                "Enter one of the recovery codes you saved when you turned on 2FA.",
                "Then open Settings > Security and set up 2FA on the new phone.",
            ]) + ["No recovery codes? Reply from your account email and we'll verify you."])

    def share_link(self, name):
        f = self.pick(FILES + FOLDERS)
        ticket = self.pick([
            f"My client says the share link for {f} says \"expired\".",
            f"How do I let someone edit {f} instead of just viewing it?",
            f"People outside my team can't open the link to {f}.",
        ])
        return ticket, self.reply(name, [
            "Happy to help with sharing!"] + self.steps([
                f"Open {f} on the web and click Share.",
                "Under Link settings, set an expiry date (or None) and the access level.",
                "Choose \"Anyone with the link\" for people outside your team, then Copy link.",
            ]) + ["Send the new link; the old one stops working once you change its settings."])

    def storage_full(self, name):
        plan, size, price = self.pick(PLANS)
        ticket = self.pick([
            "I'm getting \"storage full\" warnings. What are my options?",
            f"How do I upgrade to the {plan} plan?",
            f"Is {size} enough for my photos? My account says I'm out of space.",
        ])
        return ticket, self.reply(name, [
            "Thanks for reaching out! You have two easy options."] + self.steps([
                "Empty Trash under Settings > Storage; deleted files still count until then.",
                f"Or upgrade: Settings > Plan > {plan} ({size}, {price}/month), effective now.",
            ]) + ["Your files stay safe either way, nothing is deleted when you are full."])

    def slow_upload(self, name):
        plat = self.pick(PLATFORMS)
        ticket = self.pick([
            f"Uploads from {plat} are crawling, like 200 KB/s.",
            "Uploading a 2 GB video takes forever. Is something wrong?",
        ])
        return ticket, self.reply(name, [
            "Sorry it's slow — a couple of settings usually fix this."] + self.steps([
                "In Settings > Network, set Upload rate to \"Don't limit\".",
                "Pause other large uploads so one file gets the full bandwidth.",
                "Try a wired connection; Wi-Fi is often the bottleneck.",
            ]) + ["If it's still under 1 MB/s, reply with a speed test result and we'll look."])

    def restore_deleted(self, name):
        f = self.pick(FILES)
        ticket = self.pick([
            f"I deleted {f} by mistake this morning. Can I get it back?",
            f"Accidentally removed {f} from my Drive. Help!",
        ])
        return ticket, self.reply(name, [
            "Good news, deleted files are kept for 30 days."] + self.steps([
                "Open the web dashboard and click Trash.",
                f"Find {f}, select it, and click Restore.",
                "It goes back to its original folder and syncs to your devices.",
            ]))

    def small_charge(self, name):
        amt = self.money(3, 499)
        ticket = self.pick([
            f"I was charged {amt} twice this month. Can you fix it?",
            f"Why is there a {amt} charge on my card from Acme?",
            f"I cancelled but still got billed {amt}. Refund please.",
        ])
        return ticket, self.reply(name, [
            f"Sorry for the confusion about the {amt} charge!"] + self.steps([
                "Open Settings > Billing > History to see what each charge was for.",
                "If it's a duplicate or after cancelling, click \"Request refund\" next to it.",
                "Refunds reach your card in 5-7 business days.",
            ]))

    def invoice(self, name):
        month = self.pick(["January", "March", "May", "August", "October", "December"])
        ticket = self.pick([
            f"Can I get a PDF invoice for {month} with our company VAT number on it?",
            "How do I change the email address that receives our invoices?",
        ])
        return ticket, self.reply(name, [
            "Of course!"] + self.steps([
                "Go to Settings > Billing > Invoice details and add your company name and VAT.",
                "Set the billing email on the same page.",
                "Open History and click Download PDF next to any month.",
            ]))

    def api_rate_limit(self, name):
        ticket = self.pick([
            "Our script gets HTTP 429 from the Acme API after a few hundred uploads.",
            "API calls fail with \"rate limit exceeded\". What are the limits?",
        ])
        return ticket, self.reply(name, [
            "Thanks for the clear report — that's the rate limit."] + self.steps([
                "The limit is 10 requests per second per API key.",
                "Honor the Retry-After header and back off before retrying.",
                "Use the batch upload endpoint to send up to 100 files per call.",
            ]))

    # ---- escalated --------------------------------------------------------------------------

    def escalate(self, name, reason, meanwhile):
        ref = self.case_ref()
        hours = self.pick(["4", "8", "12"])
        return "\n".join([
            f"ESCALATED to Tier 2: {reason}. Case reference: {ref}.",
            self.greet(name),
            f"Thank you for telling us right away. {meanwhile}",
            f"A Tier 2 specialist will contact you within {hours} hours; quote {ref} in any "
            "reply.",
            SIGN_OFF])

    def data_loss(self, name):
        folder, plat = self.pick(FOLDERS), self.pick(PLATFORMS)
        ticket = self.pick([
            f"After the update, my entire {folder} folder is empty on every device. Years of "
            "files are gone!",
            f"Half the files in {folder} are corrupted and won't open anymore. I think I've "
            "lost data.",
            f"I ran a sync on {plat} this morning and all my files disappeared. They're not "
            "in Trash.",
            f"Lost data: {folder} shows 0 files on the web but it had hundreds yesterday.",
        ])
        return ticket, self.escalate(
            name, "possible data loss",
            "Please don't delete or move anything and keep the desktop app paused, so we can "
            "recover from our snapshots.")

    def security(self, name):
        country = self.pick(COUNTRIES)
        ticket = self.pick([
            f"I got an alert about a login from {country}. That wasn't me!",
            "Someone changed my account email and I didn't do it. I think I've been hacked.",
            f"There's a device I don't recognise in my account and a login from {country}.",
            "A confidential share link of ours was posted publicly. Security incident.",
        ])
        return ticket, self.escalate(
            name, "security incident",
            "Please reset your password now and sign out all sessions under Settings > "
            "Security; we have locked new share links on the account.")

    def big_charge(self, name):
        amt = self.money(501, 4900)
        ticket = self.pick([
            f"We were charged {amt} this month, our plan is nowhere near that!",
            f"There's a {amt} charge from Acme Cloud Storage that I don't recognise.",
            f"Your system billed our card {amt}. Please refund immediately.",
        ])
        return ticket, self.escalate(
            name, f"billing dispute over $500 ({amt})",
            "No need to contact your bank yet; we have paused further charges on the "
            "account while billing reviews it.")


DIRECT = ["sync_stuck", "password_reset", "lost_2fa", "share_link", "storage_full",
          "slow_upload", "restore_deleted", "small_charge", "invoice", "api_rate_limit"]
ESCALATED = ["data_loss", "security", "big_charge"]


def make_rows(rng, n, names, seen):
    g = Gen(rng)
    rows = []
    kinds = DIRECT * 2 + ESCALATED * 2  # ~2 in 7 tickets escalated
    while len(rows) < n:
        kind = rng.choice(kinds)
        name = rng.choice(names) if rng.random() < 0.8 else None
        body, reply = getattr(g, kind)(name)
        ticket = g.signed(body, name)
        if ticket in seen:
            continue
        seen.add(ticket)
        rows.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ticket},
            {"role": "assistant", "content": reply},
        ]})
    return rows


def check_tokens(paths):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "finetune"))
    import peft_baseline as pb  # chat template + target mask, as the benchmark tokenizes

    class A:
        hf_dir = ""
        model_dir = pb.DEFAULT_MODEL_DIR
        gguf_file = pb.DEFAULT_GGUF
    tok = pb.load_tokenizer(A)
    worst = 0
    for p in paths:
        with open(p) as f:
            for i, line in enumerate(f):
                ids, _ = pb.chat_example(tok, json.loads(line)["messages"])
                worst = max(worst, len(ids))
                if len(ids) > MAX_TOKENS:
                    raise SystemExit(f"{p}:{i + 1}: {len(ids)} tokens > {MAX_TOKENS}")
    print(f"longest chat: {worst} tokens (limit {MAX_TOKENS})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-tokens", action="store_true")
    args = ap.parse_args()
    rng = random.Random(SEED)
    seen = set()
    train = make_rows(rng, N_TRAIN, NAMES, seen)
    heldout = make_rows(rng, N_HELDOUT, HELDOUT_NAMES, seen)
    paths = []
    for fn, rows in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        path = os.path.join(HERE, fn)
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        esc = sum(r["messages"][2]["content"].startswith("ESCALATED") for r in rows)
        print(f"{fn}: {len(rows)} chats, {esc} escalated")
        paths.append(path)
    if args.check_tokens:
        check_tokens(paths)


if __name__ == "__main__":
    main()
