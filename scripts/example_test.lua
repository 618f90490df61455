-- example_test.lua - tests for example.lua.  Run: frontdesk test scripts/
--
-- Each test() starts a fresh conversation.  send(text [, {private=true,
-- user="...", platform="..."}]) runs a message through the real message
-- path and returns the actions taken, e.g.
--   { {action="reply", text="...", case=1, state="bot"}, ... }
-- (to_private shows up as a "reply" and a "dm").  Helpers: eq, contains,
-- not_contains, find(actions, kind [, text]), assert.

local iban = "DE89 3704 0044 0532 0130 00"

test("opening hours, German", function()
  local a = send("Wann habt ihr geöffnet?")
  local r = find(a, "reply")
  assert(r, "expected a reply")
  contains(r.text, "9 bis 18 Uhr")
  eq(find(a, "handoff"), nil, "a FAQ answer needs no human")
end)

test("opening hours, English", function()
  local r = find(send("What are your opening hours on Saturday?"), "reply")
  assert(r, "expected a reply")
  contains(r.text, "9am")
end)

test("opening hours, prefix and spelling variants", function()
  contains(send("OEFFNUNGSZEITEN bitte"), "9 bis 18 Uhr")
  contains(send("Wann habt ihr offen"), "9 bis 18 Uhr")
end)

test("delivery time", function()
  contains(send("Wie lange dauert die Lieferung nach Österreich?"), "Werktage")
  contains(send("How long does shipping take?"), "working days")
end)

test("password reset", function()
  contains(send("Ich habe mein Passwort vergessen"), "Passwort vergessen")
  contains(send("I forgot my password, what now?"), "reset link")
end)

test("contact", function()
  contains(send("Wie kann ich euch erreichen?"), "Kontaktformular")
  contains(send("Is there a phone number for customer service?"), "contact form")
end)

test("an IBAN in public moves to private without repeating it", function()
  local a = send("Ich will mein Geld zurück, meine IBAN ist " .. iban)
  local pub, dm = find(a, "reply"), find(a, "dm")
  assert(pub, "expected a public acknowledgement")
  assert(dm, "expected a private message")
  not_contains(pub.text, "DE89")
  not_contains(pub.text, "3704")
  not_contains(dm.text, "DE89", "the private message does not echo it either")
  contains(pub.text, "privat")
  eq(find(a, "handoff"), nil)
end)

test("English IBAN message is answered in English", function()
  local a = send("I want my money back, my IBAN is " .. iban)
  contains(find(a, "reply").text, "private message")
  not_contains(a, "DE89")
end)

test("the follow-up in private joins the case", function()
  local first = send("Bitte Geld zurück auf " .. iban)
  local dm = find(first, "dm")
  assert(dm, "expected a private message first")
  local a = send("Es geht um die Rechnung vom Mai, 49,90 Euro", {private = true})
  local r = find(a, "reply")
  assert(r, "expected an acknowledgement")
  contains(r.text, "Buchhaltung", "answered as the private case")
  local h = find(a, "handoff")
  assert(h, "expected a handoff")
  eq(h.queue, "billing")
  if dm.case and r.case then
    eq(r.case, dm.case, "the same case")
  end
end)

test("a card number moves to private", function()
  local a = send("Meine Kreditkarte 4111 1111 1111 1111 wurde doppelt belastet")
  assert(find(a, "dm"), "expected a private message")
  not_contains(a, "4111")
  assert(find(a, "tag", "sensitive-data"), "expected the sensitive-data tag")
end)

test("e-mail and order number move to private", function()
  local a = send("Bestellung 12345678 ist nicht da, schreibt mir an max@example.com")
  local pub = find(a, "reply")
  assert(pub and find(a, "dm"), "expected a reply and a private message")
  not_contains(pub.text, "12345678")
  not_contains(pub.text, "max@example.com")
end)

test("an order number alone moves to private", function()
  local a = send("Wo bleibt meine Bestellung #4711-2024?")
  contains(find(a, "reply").text, "Bestellung")
  assert(find(a, "dm"), "expected a private message")
  not_contains(a, "4711")
end)

test("an angry customer gets a person", function()
  local a = send("Das ist eine Frechheit!!! Seit Wochen keine Antwort, ich gehe zum Anwalt")
  local r, h = find(a, "reply"), find(a, "handoff")
  assert(r and h, "expected a short note and a handoff")
  contains(r.text, "leid")
  eq(h.queue, "complaints")
end)

test("after a handoff the bot stays quiet", function()
  send("THIS IS A SCAM, WORST SHOP EVER!!!")
  eq(find(send("Hello?"), "reply"), nil)
end)

test("a complex request goes to support", function()
  local a = send("Ich möchte meinen Vertrag kündigen und meine Daten nach DSGVO löschen lassen")
  eq(find(a, "handoff").queue, "support")
end)

test("an unknown question goes to a person", function()
  local a = send("Kann ich mit Bitcoin bezahlen?")
  assert(find(a, "reply"), "expected a reply")
  eq(find(a, "handoff").queue, "support")
end)

test("thanks get a friendly answer", function()
  contains(send("Danke, hat alles geklappt!"), "Gern geschehen")
end)

test("public chatter is left alone", function()
  eq(#send("Schönes Wochenende allen hier"), 0)
end)
