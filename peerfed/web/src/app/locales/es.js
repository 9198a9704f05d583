// Spanish interface text (spec §13.10): the same keys as en.js; a missing key falls back to English.

export const es = {
  tag: 'es',
  dir: 'ltr',
  name: 'Español',
  strings: {
    // --- shared ---
    'language.label': 'Idioma',
    // --- device: backup, one device at a time, connection, lock, erase, invite ---
    'device.backup.title': 'Guardar una copia',
    'device.backup.about': 'Una copia guarda tus claves y tus conversaciones, cifradas con una frase de paso que tú eliges. Con ella puedes seguir desde otro navegador o desde la línea de órdenes de peerfed. Guárdala en un lugar seguro.',
    'device.backup.passphrase': 'Una frase de paso para la copia',
    'device.backup.passphrase_hint': 'La necesitarás para abrir la copia. Nunca sale de este dispositivo.',
    'device.backup.needs_passphrase': 'Una copia siempre va cifrada. Elige primero una frase de paso.',
    'device.backup.download': 'Descargar una copia',
    'device.backup.making': 'Cifrando tu copia en este dispositivo…',
    'device.backup.done': 'Tu copia se guardó como {file}.',
    'device.import.start': 'Tengo una copia',
    'device.import.title': 'Seguir desde una copia',
    'device.import.about': 'Abre una copia hecha en otro navegador o con la línea de órdenes de peerfed. Tus conversaciones siguen aquí y, desde ahora, tus mensajes llegan solo a este dispositivo.',
    'device.import.file': 'El archivo de la copia',
    'device.import.file_hint': 'Se queda en este dispositivo: se abre aquí y nunca se envía a ningún sitio.',
    'device.import.passphrase': 'La frase de paso de la copia',
    'device.import.passphrase_hint': 'Tus claves en este dispositivo quedarán protegidas con la misma frase de paso.',
    'device.import.open': 'Abrir la copia',
    'device.import.back': 'Volver',
    'device.import.no_file': 'Elige primero el archivo de la copia.',
    'device.import.opening': 'Abriendo tu copia y trayendo tu identidad a este dispositivo…',
    'device.import.other_node': 'Esta copia es de otra comunidad:',
  },
};
