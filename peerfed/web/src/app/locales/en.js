// English interface text (spec §13.10). Keys are grouped by screen; each screen's strings stay
// together so work on different screens touches different blocks. Placeholders look like {name}.

export const en = {
  tag: 'en',
  dir: 'ltr',
  name: 'English',
  strings: {
    // --- shared ---
    'language.label': 'Language',
    // --- device: backup, one device at a time, connection, lock, erase, invite ---
    'device.backup.title': 'Keep a backup',
    'device.backup.about': 'A backup holds your keys and your conversations, encrypted under a passphrase you choose. With it you can go on from another browser or from the peerfed command line. Keep it somewhere safe.',
    'device.backup.passphrase': 'A passphrase for the backup',
    'device.backup.passphrase_hint': 'You will need it to open the backup. It never leaves this device.',
    'device.backup.needs_passphrase': 'A backup is always encrypted. Please choose a passphrase first.',
    'device.backup.download': 'Download a backup',
    'device.backup.making': 'Encrypting your backup on this device…',
    'device.backup.done': 'Your backup was saved as {file}.',
    'device.import.start': 'I have a backup',
    'device.import.title': 'Continue from a backup',
    'device.import.about': 'Open a backup made in another browser or with the peerfed command line. Your conversations continue here, and from now on your messages come to this device only.',
    'device.import.file': 'The backup file',
    'device.import.file_hint': 'It stays on this device: it is opened here and never sent anywhere.',
    'device.import.passphrase': 'The backup’s passphrase',
    'device.import.passphrase_hint': 'Your keys on this device will be protected by the same passphrase.',
    'device.import.open': 'Open backup',
    'device.import.back': 'Back',
    'device.import.no_file': 'Please choose the backup file first.',
    'device.import.opening': 'Opening your backup and moving your identity to this device…',
    'device.import.other_node': 'This backup belongs to another community:',
    'device.moved.title': 'This identity now lives on another device.',
    'device.moved.since': 'It moved there on {when}. This device no longer receives messages, and nothing new is fetched here.',
    'device.moved.no_time': 'This device no longer receives messages, and nothing new is fetched here.',
    'device.moved.kept': 'What this device already holds stays readable here.',
    'device.moved.move_back': 'Move it back to this device',
    'device.live.lost': 'The connection to your community was lost. Nothing is lost; trying again in {seconds} s.',
    'device.live.back': 'Connected again. Anything that arrived meanwhile is here now.',
    'device.notice.label': 'This device',
    'device.moved.refused': 'This identity now lives on another device, so nothing can be sent or fetched from this one.',
  },
};
